//! Where the CLI keeps the server URL and its API key: `config.toml` in
//! `$XDG_CONFIG_HOME/berth/` (else `~/.config/berth/`), mode 0600 in a 0700 folder.
//! `BERTH_URL` and `BERTH_KEY` override what the file says.

use super::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's contents. `url` and `key` are what every command needs; the rest lets a later
/// `berth login` to the same server revoke the key it replaces.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The server and key a command talks to.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub key: String,
}

/// What `Debug` shows of a secret: whether there is one, never its text.
fn hidden(v: Option<&str>) -> Option<&'static str> {
    v.map(|_| "***")
}

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConfig")
            .field("url", &self.url)
            .field("key", &hidden(self.key.as_deref()))
            .field("username", &self.username)
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("key", &hidden(Some(&self.key)))
            .finish()
    }
}

/// The config file's path, from the given `XDG_CONFIG_HOME` and `HOME` values.
pub fn path_from(xdg: Option<String>, home: Option<String>) -> Result<PathBuf> {
    if let Some(x) = xdg.filter(|x| Path::new(x).is_absolute()) {
        return Ok(PathBuf::from(x).join("berth").join("config.toml"));
    }
    match home.filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h)
            .join(".config")
            .join("berth")
            .join("config.toml")),
        None => Err(Error::Other(
            "Neither XDG_CONFIG_HOME nor HOME is set, so there is no place for berth's configuration.".into(),
        )),
    }
}

/// The config file's path from this process's environment.
pub fn path() -> Result<PathBuf> {
    path_from(
        std::env::var("XDG_CONFIG_HOME").ok(),
        std::env::var("HOME").ok(),
    )
}

/// The file, or `None` when there is none yet.
pub fn load() -> Result<Option<FileConfig>> {
    let p = path()?;
    match std::fs::read_to_string(&p) {
        Ok(text) => toml::from_str(&text).map(Some).map_err(|e| {
            Error::Other(format!(
                "{} is not a valid berth configuration ({}); run `berth login URL` to write it anew.",
                p.display(),
                e.message()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Other(format!("cannot read {}: {e}", p.display()))),
    }
}

/// Writes the file with mode 0600 (its folder 0700), replacing it atomically.
pub fn save(cfg: &FileConfig) -> Result<PathBuf> {
    let p = path()?;
    let dir = p.parent().unwrap_or(Path::new("."));
    let io = |what: &str, e: std::io::Error| Error::Other(format!("cannot {what}: {e}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(&format!("create {}", dir.display()), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io(&format!("protect {}", dir.display()), e))?;
    let text = toml::to_string(cfg)
        .map_err(|e| Error::Other(format!("cannot write the configuration: {e}")))?;
    let tmp = dir.join(format!(".config.toml.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(&format!("write {}", p.display()), e)
    })?;
    Ok(p)
}

/// Lays `BERTH_URL`/`BERTH_KEY` (when set and not empty) over the file's values.
pub fn resolve_from(
    file: Option<FileConfig>,
    env_url: Option<String>,
    env_key: Option<String>,
) -> Result<Target> {
    let file = file.unwrap_or_default();
    let url = env_url.filter(|u| !u.trim().is_empty()).or(file.url);
    let key = env_key.filter(|k| !k.trim().is_empty()).or(file.key);
    match (url, key) {
        (Some(url), Some(key)) => Ok(Target {
            url: normalize_url(&url)?,
            key: key.trim().to_string(),
        }),
        (None, _) => Err(Error::Other(
            "Not logged in: run `berth login URL` first (or set BERTH_URL and BERTH_KEY).".into(),
        )),
        (Some(_), None) => Err(Error::Other(
            "No API key: run `berth login URL` first (or set BERTH_KEY).".into(),
        )),
    }
}

/// The server and key for a command: the file, overridden by the environment.
pub fn resolve() -> Result<Target> {
    let env = |k: &str| std::env::var(k).ok();
    let file = if env("BERTH_URL").is_some_and(|u| !u.is_empty())
        && env("BERTH_KEY").is_some_and(|k| !k.is_empty())
    {
        None
    } else {
        load()?
    };
    resolve_from(file, env("BERTH_URL"), env("BERTH_KEY"))
}

/// `host:port` → `http://host:port`; no trailing slash; only http and https.
pub fn normalize_url(url: &str) -> Result<String> {
    let u = url.trim();
    let u = if u.contains("://") {
        u.to_string()
    } else {
        format!("http://{u}")
    };
    let u = u.trim_end_matches('/').to_string();
    let parsed = reqwest::Url::parse(&u)
        .map_err(|e| Error::Usage(format!("\"{url}\" is not a server URL ({e}).")))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(Error::Usage(format!(
                "\"{url}\": this berth build speaks plain http only; use an http:// URL."
            )))
        }
        other => {
            return Err(Error::Usage(format!(
                "\"{url}\" has scheme {other}; use an http:// URL."
            )))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::Usage(format!("\"{url}\" names no host.")));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_honours_xdg_then_home() {
        assert_eq!(
            path_from(Some("/x/cfg".into()), Some("/home/a".into())).unwrap(),
            PathBuf::from("/x/cfg/berth/config.toml")
        );
        assert_eq!(
            path_from(Some("relative".into()), Some("/home/a".into())).unwrap(),
            PathBuf::from("/home/a/.config/berth/config.toml")
        );
        assert_eq!(
            path_from(None, Some("/home/a".into())).unwrap(),
            PathBuf::from("/home/a/.config/berth/config.toml")
        );
        assert!(path_from(None, None).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = FileConfig {
            url: Some("http://file:8080".into()),
            key: Some("file-key".into()),
            ..Default::default()
        };
        let t = resolve_from(Some(file.clone()), None, None).unwrap();
        assert_eq!(
            (t.url.as_str(), t.key.as_str()),
            ("http://file:8080", "file-key")
        );
        let t = resolve_from(
            Some(file.clone()),
            Some("http://env:1/".into()),
            Some("env-key".into()),
        )
        .unwrap();
        assert_eq!(
            (t.url.as_str(), t.key.as_str()),
            ("http://env:1", "env-key")
        );
        let t = resolve_from(Some(file), Some(String::new()), Some("env-key".into())).unwrap();
        assert_eq!(
            (t.url.as_str(), t.key.as_str()),
            ("http://file:8080", "env-key")
        );
        assert!(resolve_from(None, None, Some("k".into())).is_err());
        assert!(resolve_from(None, Some("http://a".into()), None).is_err());
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalize_url("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_url("http://h:1/base/").unwrap(),
            "http://h:1/base"
        );
        assert!(normalize_url("https://h").is_err());
        assert!(normalize_url("ftp://h").is_err());
        assert!(normalize_url("http://").is_err());
    }

    #[test]
    fn the_file_round_trips() {
        let cfg = FileConfig {
            url: Some("http://h:1".into()),
            key: Some("secret".into()),
            username: Some("alice".into()),
            key_id: None,
        };
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("url = \"http://h:1\""), "{text}");
        assert_eq!(toml::from_str::<FileConfig>(&text).unwrap(), cfg);
    }

    #[test]
    fn debug_never_prints_the_key() {
        let file = FileConfig {
            url: Some("http://b".into()),
            key: Some("berth_secret-key-text".into()),
            username: Some("alice".into()),
            key_id: None,
        };
        let target = Target {
            url: "http://b".into(),
            key: "berth_secret-key-text".into(),
        };
        for shown in [format!("{file:?}"), format!("{target:?}")] {
            assert!(!shown.contains("secret-key-text"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}
