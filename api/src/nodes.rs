//! Nodes: the Docker engines sessions run on, as admins see and manage them.

use crate::{FieldError, Resources};
use serde::{Deserialize, Serialize};

/// A node's state: `UP` (placing sessions), `DRAINING` (running ones finish, no new ones),
/// `DOWN` (its engine stopped answering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NodeState {
    Up,
    Draining,
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "UP",
            Self::Draining => "DRAINING",
            Self::Down => "DOWN",
        }
    }
}

/// A node as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub id: String,
    pub name: String,
    /// The engine's endpoint, e.g. `unix:///var/run/docker.sock`.
    pub docker: String,
    pub group: Option<String>,
    pub state: NodeState,
    pub state_reason: String,
    /// What sessions may use: the engine's CPUs and memory minus the configured reserve.
    pub capacity: Resources,
    /// What live sessions placed here hold.
    pub allocated: Resources,
    /// Live sessions placed here.
    pub sessions: u32,
    /// The built-in node of the local engine (cannot be removed).
    pub local: bool,
    /// An admin drained it (also while it is `DOWN`): Undrain puts it back.
    #[serde(default)]
    pub draining: bool,
    /// GPU devices with the shares live sessions hold on each (1 = a whole device).
    #[serde(default)]
    pub gpus: Vec<GpuDevice>,
    pub created_at: String,
    /// The last time the engine answered a health check.
    pub checked_at: Option<String>,
}

/// One GPU device of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GpuDevice {
    pub index: u32,
    /// The part of the device live sessions hold, a decimal like `"0.45"` (`"1"`: all of it).
    pub allocated: String,
}

/// TLS material for a TCP engine, PEM text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTls {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// `POST /api/v1/nodes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNode {
    pub name: String,
    pub docker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<NodeTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `PATCH /api/v1/nodes/{id}`: drain or undrain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateNode {
    pub state: String,
}

/// Node and group names: 1–64 of `[a-z0-9-]`, starting with a letter.
pub fn validate_node_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("A {what} name has 1 to 64 characters."));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "A {what} name uses lowercase letters, digits and '-', starting with a letter."
        ));
    }
    Ok(())
}

/// Where an engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    Tcp(String),
}

/// Parses a Docker endpoint: `unix:///path` or `tcp://host:port` (TCP needs TLS material).
pub fn parse_endpoint(url: &str, tls: bool) -> Result<Endpoint, String> {
    let url = url.trim();
    if let Some(path) = url.strip_prefix("unix://") {
        if !path.starts_with('/') || path.len() > 107 || path.contains('\0') {
            return Err(
                "A unix socket endpoint is unix:///absolute/path (at most 107 bytes).".into(),
            );
        }
        return Ok(Endpoint::Unix(path.to_string()));
    }
    if let Some(addr) = url.strip_prefix("tcp://") {
        let ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err("A TCP endpoint is tcp://HOST:PORT.".into());
        }
        if !tls {
            return Err(
                "A TCP engine must be reached with TLS: send tls {ca, cert, key} as PEM text."
                    .into(),
            );
        }
        return Ok(Endpoint::Tcp(addr.to_string()));
    }
    Err(format!(
        "\"{}\" is not a Docker endpoint; use unix:///var/run/docker.sock or tcp://HOST:2376.",
        url.escape_default()
    ))
}

impl CreateNode {
    pub fn validate(&self) -> Result<Endpoint, Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Err(m) = validate_node_name("node", &self.name) {
            errs.push(FieldError::new("name", m));
        }
        if let Some(g) = &self.group {
            if let Err(m) = validate_node_name("group", g) {
                errs.push(FieldError::new("group", m));
            }
        }
        if let Some(t) = &self.tls {
            for (field, pem) in [
                ("tls.ca", &t.ca),
                ("tls.cert", &t.cert),
                ("tls.key", &t.key),
            ] {
                if !pem.contains("-----BEGIN ") || pem.len() > 64 * 1024 {
                    errs.push(FieldError::new(
                        field,
                        "Paste the PEM text (-----BEGIN …), at most 64 KiB.",
                    ));
                }
            }
        }
        match parse_endpoint(&self.docker, self.tls.is_some()) {
            Ok(e) if errs.is_empty() => Ok(e),
            Ok(_) => Err(errs),
            Err(m) => {
                errs.push(FieldError::new("docker", m));
                Err(errs)
            }
        }
    }
}

impl UpdateNode {
    pub fn validate(&self) -> Result<NodeState, FieldError> {
        match self.state.trim().to_ascii_uppercase().as_str() {
            "UP" => Ok(NodeState::Up),
            "DRAINING" => Ok(NodeState::Draining),
            _ => Err(FieldError::new(
                "state",
                "Set state to DRAINING (no new sessions) or UP.",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_names() {
        assert_eq!(
            parse_endpoint("unix:///var/run/docker.sock", false),
            Ok(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert!(parse_endpoint("tcp://10.0.0.2:2376", false).is_err());
        assert!(parse_endpoint("tcp://10.0.0.2:2376", true).is_ok());
        for bad in ["http://x", "unix://relative", "tcp://host", "tcp://:1", ""] {
            assert!(parse_endpoint(bad, true).is_err(), "{bad}");
        }
        assert!(validate_node_name("node", "node-2").is_ok());
        for bad in ["", "Node", "2node", "a_b", &"n".repeat(65)] {
            assert!(validate_node_name("node", bad).is_err(), "{bad}");
        }
        assert_eq!(
            UpdateNode {
                state: "draining".into()
            }
            .validate()
            .unwrap(),
            NodeState::Draining
        );
        assert!(UpdateNode {
            state: "DOWN".into()
        }
        .validate()
        .is_err());
    }
}
