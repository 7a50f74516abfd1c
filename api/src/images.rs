//! Session images and the apps they declare in `berth.service-ports`.

use serde::{Deserialize, Serialize};

pub const SERVICE_PORTS_LABEL: &str = "berth.service-ports";
pub const MIN_RESOURCES_LABEL: &str = "berth.min-resources";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServicePort {
    pub name: String,
    pub protocol: String,
    pub port: u16,
}

/// An image as the launcher lists it. An image whose labels do not parse carries `error`
/// and cannot be launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    pub name: String,
    pub id: String,
    pub apps: Vec<ServicePort>,
    pub min_resources: Option<crate::Resources>,
    pub error: Option<String>,
}

fn validate_app_name(name: &str) -> Result<(), String> {
    if name == crate::ssh::SSH_APP {
        return Err(format!(
            "app name \"{name}\" is reserved for berth's own SSH server (berth ssh)"
        ));
    }
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

    #[test]
    fn preopened_ports() {
        assert_eq!(
            validate_preopen_ports(&[8000, 8080]).unwrap(),
            vec![8000, 8080]
        );
        let e = validate_preopen_ports(&[80, 2200, 8000, 8000]).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("80 ") && e[1].contains("2200") && e[2].contains("twice"));
        assert!(validate_preopen_ports(&(2000..2011).collect::<Vec<_>>()).is_err());
        let jupyter = parse_service_ports("jupyter:http:8888").unwrap();
        assert_eq!(
            session_apps(&jupyter, &[8000]).unwrap()[1].name,
            "port-8000"
        );
        assert!(session_apps(&jupyter, &[8888])
            .unwrap_err()
            .contains("jupyter"));
    }
}

/// Most ports a user may preopen at launch.
pub const MAX_PREOPEN_PORTS: usize = 10;

/// Checks ports a user preopens at launch: the port rules, no duplicates, at most 10.
/// Errors name the port and the rule.
pub fn validate_preopen_ports(ports: &[u32]) -> Result<Vec<u16>, Vec<String>> {
    let mut errs = Vec::new();
    let mut out: Vec<u16> = Vec::new();
    if ports.len() > MAX_PREOPEN_PORTS {
        errs.push(format!(
            "{} ports are preopened; at most {MAX_PREOPEN_PORTS} are allowed.",
            ports.len()
        ));
    }
    for &p in ports {
        match validate_port(p) {
            Ok(p) if out.contains(&p) => errs.push(format!("Port {p} is listed twice.")),
            Ok(p) => out.push(p),
            Err(e) => errs.push(format!("Preopened {e}.")),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// An image's apps plus the preopened ports (each the http app `port-N`). A preopened port
/// an image app already uses is an error naming both.
pub fn session_apps(
    image_apps: &[ServicePort],
    preopen: &[u16],
) -> Result<Vec<ServicePort>, String> {
    let mut out = image_apps.to_vec();
    for &p in preopen {
        if let Some(a) = image_apps.iter().find(|a| a.port == p) {
            return Err(format!(
                "Port {p} is already the image's app {}; do not preopen it.",
                a.name
            ));
        }
        out.push(ServicePort {
            name: format!("port-{p}"),
            protocol: "http".into(),
            port: p,
        });
    }
    Ok(out)
}

/// `POST /api/v1/sessions/{id}/apps/{app}` answer: where the browser opens the app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppUrl {
    pub url: String,
}

/// `GET /api/v1/sessions/{id}/apps/{app}/token` answer: the app's own token (JupyterLab's),
/// for the owner reaching the app through `berth app`, where no proxy adds it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppToken {
    /// Empty when the session has no app secret.
    pub token: String,
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppToken").field("token", &"***").finish()
    }
}
