//! Session images and the apps they declare in `berth.service-ports`.

use serde::{Deserialize, Serialize};

pub const SERVICE_PORTS_LABEL: &str = "berth.service-ports";
pub const MIN_RESOURCES_LABEL: &str = "berth.min-resources";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub name: String,
    pub protocol: String,
    pub port: u16,
}

/// An image as the launcher lists it. An image whose labels do not parse carries `error`
/// and cannot be launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub name: String,
    pub id: String,
    pub apps: Vec<ServicePort>,
    pub min_resources: Option<crate::Resources>,
    pub error: Option<String>,
}

fn validate_app_name(name: &str) -> Result<(), String> {
    let ok = (1..=20).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "app name \"{}\" must be 1-20 of [a-z0-9-], start with a letter and not contain \"--\"",
            name.escape_default()
        ))
    }
}

/// Checks one port number against berth's rules.
pub fn validate_port(port: u32) -> Result<u16, String> {
    if !(1025..=65534).contains(&port) {
        return Err(format!("port {port} is outside 1025..=65534"));
    }
    if (2200..=2299).contains(&port) {
        return Err(format!(
            "port {port} is in 2200..=2299, which berth reserves"
        ));
    }
    Ok(port as u16)
}

/// Parses a `berth.service-ports` label: `name:protocol:port,…`.
pub fn parse_service_ports(label: &str) -> Result<Vec<ServicePort>, String> {
    let mut out: Vec<ServicePort> = Vec::new();
    for item in label.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parts: Vec<&str> = item.split(':').collect();
        let [name, protocol, port] = parts[..] else {
            return Err(format!("\"{item}\" is not name:protocol:port"));
        };
        validate_app_name(name)?;
        if !matches!(protocol, "http" | "tcp" | "preopen") {
            return Err(format!(
                "protocol \"{protocol}\" of {name} is not http, tcp or preopen"
            ));
        }
        let port: u32 = port
            .parse()
            .map_err(|_| format!("port \"{port}\" of {name} is not a number"))?;
        let port = validate_port(port)?;
        if out.iter().any(|p| p.port == port) {
            return Err(format!("port {port} is declared twice"));
        }
        if out.iter().any(|p| p.name == name) {
            return Err(format!("app {name} is declared twice"));
        }
        out.push(ServicePort {
            name: name.to_string(),
            protocol: protocol.to_string(),
            port,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ports() {
        let v = parse_service_ports("jupyter:http:8888,tb:http:6006").unwrap();
        assert_eq!(v.len(), 2);
        assert!(parse_service_ports("").unwrap().is_empty());
        assert!(parse_service_ports("x:http:80").unwrap_err().contains("80"));
        assert!(parse_service_ports("x:http:2222")
            .unwrap_err()
            .contains("reserves"));
        assert!(parse_service_ports("a:http:8888,b:http:8888").is_err());
        assert!(parse_service_ports("a--b:http:8888").is_err());
        assert!(parse_service_ports("a:udp:8888").is_err());
    }
}
