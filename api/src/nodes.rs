//! Nodes: the Docker engines sessions run on, as admins see and manage them.

use crate::{FieldError, Resources};
use serde::{Deserialize, Serialize};

/// A node's state: `UP` (placing sessions), `DRAINING` (running ones finish, no new ones),
/// `DOWN` (its engine stopped answering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Where this node's engine sees berth's folder storage (the directory holding
    /// `vfolders/`), as declared when the node was added; `null` when not declared.
    #[serde(default)]
    pub storage: Option<String>,
    /// Sessions with folders may run here: the node is on the gateway's host (a unix socket)
    /// or declared where it sees the folder storage.
    #[serde(default)]
    pub folders: bool,
    pub created_at: String,
    /// The last time the engine answered a health check.
    pub checked_at: Option<String>,
    /// Where the node's own `berth wsproxy` is reached (terminals, apps and tunnels of its
    /// sessions go there, never through the gateway); absent: the gateway's proxy serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// The proxy's key, in the answer that registered the proxy only (it is never shown
    /// again): give it to `berth wsproxy --key-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_key: Option<String>,
    /// What its running sessions really use (live stats), beside what they hold; absent
    /// while none has been sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<NodeUse>,
}

/// One GPU device of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuDevice {
    pub index: u32,
    /// The part of the device live sessions hold, a decimal like `"0.45"` (`"1"`: all of it).
    pub allocated: String,
}

/// What a node's running sessions really use, from their latest live stats (`null` while no
/// session there has been sampled).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeUse {
    /// CPUs busy, summed over the sampled sessions (e.g. `1.35`).
    pub cpu: f64,
    /// Memory in use, summed.
    pub mem_bytes: u64,
    /// Running sessions with a recent sample.
    pub sampled: u32,
    /// Each GPU device sessions here hold, as NVML measured it.
    #[serde(default)]
    pub gpus: Vec<crate::stats::GpuSample>,
}

/// TLS material for a TCP engine, PEM text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NodeTls {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// `POST /api/v1/nodes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateNode {
    pub name: String,
    pub docker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<NodeTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The public URL of the `berth wsproxy` that will run beside this node
    /// (`http://HOST:PORT` or `https://…`): the answer carries its key, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Where the node's engine sees berth's folder storage: the absolute path, on the node's
    /// host, of the directory the gateway knows as its storage directory (for example an NFS
    /// export mounted on every node and on the gateway). Without it, only a node on the
    /// gateway's host runs sessions with folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// Checks a proxy's public URL: `http://` or `https://`, a host, no path beyond `/`, no
/// query, fragment or credentials, at most 2048 bytes. The URL without its trailing `/`.
pub fn validate_proxy_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let bad = || {
        Err("A proxy URL is http://HOST:PORT or https://HOST[:PORT], with no path, query or credentials.".to_string())
    };
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return bad();
    };
    if url.len() > 2048
        || rest.is_empty()
        || rest.contains(['/', '?', '#', '@', '\\'])
        || rest.bytes().any(|b| !(0x21..=0x7e).contains(&b))
        || rest.starts_with(':')
    {
        return bad();
    }
    if !rest.ends_with(']') {
        if let Some((host, port)) = rest.rsplit_once(':') {
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return bad();
            }
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod proxy_url_tests {
    use super::validate_proxy_url;

    #[test]
    fn proxy_urls_are_an_origin_and_nothing_else() {
        for (ok, want) in [
            ("http://10.0.0.2:9090", "http://10.0.0.2:9090"),
            ("https://node2.example.com/", "https://node2.example.com"),
            ("http://[::1]:8081", "http://[::1]:8081"),
            ("http://[::1]", "http://[::1]"),
        ] {
            assert_eq!(validate_proxy_url(ok).as_deref(), Ok(want), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.2:9090",
            "ftp://x",
            "http://",
            "http://a/b",
            "http://a?x=1",
            "http://u:p@a",
            "http://a:0",
            "http://a:99999",
            "http://:80",
            "http://a b",
            "javascript:alert(1)",
        ] {
            assert!(validate_proxy_url(bad).is_err(), "{bad}");
        }
    }
}

/// `PATCH /api/v1/nodes/{id}`: drain or undrain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A node's view of the folder storage: an absolute, normalized path of at most 1024 bytes
/// (no `.` or `..` components, no doubled or trailing `/`, no NUL, not `/` itself), since the
/// engine bind-mounts folders from below it.
pub fn validate_storage_path(path: &str) -> Result<(), String> {
    if path.len() > 1024 || path.contains('\0') {
        return Err("A storage path has at most 1024 bytes and no NUL.".into());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "\"{}\" is not an absolute path; give where the node sees the storage, e.g. /mnt/berth.",
            path.escape_default()
        ));
    };
    if rest.is_empty()
        || rest
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "\"{}\" is not a plain absolute path below /: no empty, . or .. parts.",
            path.escape_default()
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
        if let Some(p) = &self.storage {
            if let Err(m) = validate_storage_path(p) {
                errs.push(FieldError::new("storage", m));
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
        if let Some(u) = &self.proxy_url {
            if let Err(m) = validate_proxy_url(u) {
                errs.push(FieldError::new("proxy_url", m));
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
    fn an_idle_node_decodes_and_reencodes_as_sent() {
        let sent = serde_json::json!({
            "id": "0b9f0c1e-2f4d-4f7e-9d6a-3c1f2e4a5b6c",
            "name": "local",
            "docker": "unix:///var/run/docker.sock",
            "group": null,
            "state": "UP",
            "state_reason": "",
            "capacity": {"cpu": "2", "mem": 4_294_967_296u64, "gpu": 0, "gpu_shares": "0"},
            "allocated": {"cpu": "0", "mem": 0, "gpu": 0, "gpu_shares": "0"},
            "sessions": 0,
            "local": true,
            "draining": false,
            "gpus": [],
            "storage": null,
            "folders": true,
            "created_at": "2026-01-01T00:00:00Z",
            "checked_at": null
        });
        let node: Node = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(node.allocated, crate::Resources::default());
        assert_eq!(serde_json::to_value(&node).unwrap(), sent);
    }

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

    #[test]
    fn storage_paths_are_plain_absolute_paths() {
        for good in ["/mnt/berth", "/srv/nfs/berth-data", "/a"] {
            assert_eq!(validate_storage_path(good), Ok(()), "{good}");
        }
        let long = format!("/{}", "a".repeat(1024));
        for bad in [
            "",
            "/",
            "mnt/berth",
            "/mnt//berth",
            "/mnt/berth/",
            "/mnt/../etc",
            "/mnt/./x",
            "/mnt/\0x",
            long.as_str(),
        ] {
            assert!(validate_storage_path(bad).is_err(), "{bad:?}");
        }
    }
}
