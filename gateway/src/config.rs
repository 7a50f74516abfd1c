//! Configuration, layered: defaults → `berth.toml` in the data dir → `BERTH_*` environment →
//! command-line flags. Clap reads both flags and environment (a flag wins); the file fills
//! whatever neither gave.

use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Flags of `berth serve`; each also reads its `BERTH_*` variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the database and berth.toml live [default: ./berth-data]
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where folders and unfinished uploads live (`vfolders/` and `uploads/` below it): for
    /// nodes on other hosts, a shared filesystem (e.g. an NFS export) that each such node
    /// declares its own path to with `berth node add --storage` [default: the data dir]
    #[arg(long, env = "BERTH_STORAGE_DIR")]
    pub storage_dir: Option<PathBuf>,
    /// PostgreSQL to keep berth's state in, e.g. postgres://berth:PASSWORD@db:5432/berth
    /// [default: SQLite, berth.db in the data dir]
    #[arg(long, env = "BERTH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The URL people reach berth at; URLs handed out are built from it
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory with the built web console (index.html, app.js, app_bg.wasm)
    #[arg(long, env = "BERTH_CONSOLE_DIR")]
    pub console_dir: Option<PathBuf>,
    /// Docker endpoint of the local node, e.g. unix:///var/run/docker.sock
    #[arg(long, env = "BERTH_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// How apps get an origin of their own: `subdomain` (APP--ID.<base domain>) or `port`
    /// (a listener per open app, for sites without wildcard DNS) [default: subdomain]
    #[arg(long, env = "BERTH_APP_MODE")]
    pub app_mode: Option<String>,
    /// Port mode's ports, `FIRST-LAST`, or `0` for any free port [default: 0]
    #[arg(long, env = "BERTH_APP_PORTS")]
    pub app_ports: Option<String>,
    /// Apps are served on APP--SESSIONID.<this domain> [default: localhost]
    #[arg(long, env = "BERTH_APP_BASE_DOMAIN")]
    pub app_base_domain: Option<String>,
    /// Seconds a terminal's shell outlives a dropped connection [default: 600]
    #[arg(long, env = "BERTH_TERMINAL_GRACE_S")]
    pub terminal_grace_s: Option<u64>,
    /// Bytes of recent terminal output replayed after a reconnect [default: 262144]
    #[arg(long, env = "BERTH_TERMINAL_REPLAY_BYTES")]
    pub terminal_replay_bytes: Option<usize>,
    /// Seconds a terminal handle waits for its first connection before it is forgotten
    /// [default: 60]
    #[arg(long, env = "BERTH_TERMINAL_CONNECT_S")]
    pub terminal_connect_s: Option<u64>,
    /// Seconds a client has to send a request's headers; slower connections are closed
    /// (and idle kept-alive connections after as long) [default: 30]
    #[arg(long, env = "BERTH_HEADER_TIMEOUT_S")]
    pub header_timeout_s: Option<u64>,
    /// Client connections served at once; further ones wait to be accepted until one closes
    /// [default: 1024]
    #[arg(long, env = "BERTH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds an unfinished upload is kept after its last byte [default: 86400]
    #[arg(long, env = "BERTH_UPLOAD_EXPIRY_S")]
    pub upload_expiry_s: Option<u64>,
    /// Queue order of the scheduler: fifo, lifo or drf [default: fifo]
    #[arg(long, env = "BERTH_SCHEDULER_ORDER")]
    pub scheduler_order: Option<String>,
    /// Node choice: concentrated (fill nodes) or dispersed (spread) [default: concentrated]
    #[arg(long, env = "BERTH_SCHEDULER_PLACEMENT")]
    pub scheduler_placement: Option<String>,
    /// Seconds a session may wait before it reserves a node for itself [default: 600]
    #[arg(long, env = "BERTH_STARVATION_AFTER_S")]
    pub starvation_after_s: Option<u64>,
    /// Seconds between node health checks; a node is DOWN after 3 failed ones [default: 5]
    #[arg(long, env = "BERTH_NODE_CHECK_S")]
    pub node_check_s: Option<u64>,
    /// CPU kept back on every node for the system, e.g. 0.5 [default: 0]
    #[arg(long, env = "BERTH_NODE_RESERVE_CPU")]
    pub node_reserve_cpu: Option<String>,
    /// Memory kept back on every node for the system, e.g. 1g [default: 0]
    #[arg(long, env = "BERTH_NODE_RESERVE_MEM")]
    pub node_reserve_mem: Option<String>,
    /// A token Prometheus must send as `Authorization: Bearer TOKEN` to read /metrics
    /// [default: none, /metrics is open like /healthz]
    #[arg(long, env = "BERTH_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    storage_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    console_dir: Option<PathBuf>,
    docker_host: Option<String>,
    terminal_grace_s: Option<u64>,
    terminal_replay_bytes: Option<usize>,
    terminal_connect_s: Option<u64>,
    header_timeout_s: Option<u64>,
    max_connections: Option<usize>,
    app_base_domain: Option<String>,
    app_mode: Option<String>,
    app_ports: Option<String>,
    upload_expiry_s: Option<u64>,
    scheduler_order: Option<String>,
    scheduler_placement: Option<String>,
    starvation_after_s: Option<u64>,
    node_check_s: Option<u64>,
    node_reserve_cpu: Option<String>,
    node_reserve_mem: Option<String>,
    node_gpus: Option<std::collections::BTreeMap<String, u32>>,
    metrics_token: Option<String>,
}

/// A secret of the configuration (a password, a key): usable as a `&str`, printed as `***`
/// by `Debug`, so a logged configuration never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Where the folder storage is (`vfolders/`, `uploads/`); the data dir unless configured.
    pub storage_dir: PathBuf,
    /// The PostgreSQL database (`--database-url`); `None` is SQLite in the data dir.
    pub database_url: Option<Secret>,
    /// Explicit public URL; when `None` it is derived from the bound address.
    pub public_url: Option<String>,
    pub console_dir: PathBuf,
    /// Path of the Docker unix socket.
    pub docker_socket: PathBuf,
    /// Apps live on `APP--SESSIONID.` + this domain.
    pub app_base_domain: String,
    /// Port mode's port range (`Some(None)` = any free port); `None` = subdomain mode.
    pub app_ports: Option<Option<(u16, u16)>>,
    /// Terminal grace period, replay buffer and connect deadline.
    pub terminal: wsproxy::TerminalConfig,
    /// How long a client has to send a request's headers.
    pub header_timeout: std::time::Duration,
    /// Client connections served at once.
    pub max_connections: usize,
    /// The first superadmin's password (`BERTH_ADMIN_PASSWORD`), used only at first start.
    pub admin_password: Option<Secret>,
    /// Seconds an unfinished upload is kept after its last byte.
    pub upload_expiry_s: u64,
    /// The scheduling pass's queue order, node choice and starvation rule.
    pub scheduler: scheduler::Config,
    /// Seconds between node health checks.
    pub node_check_s: u64,
    /// Kept back on every node (subtracted from its capacity).
    pub node_reserve: api::Resources,
    /// GPU devices declared per node name (`[node_gpus]` in berth.toml): scheduled by berth,
    /// passed to containers as environment (`CUDA_VISIBLE_DEVICES`, `BERTH_GPU_SHARES`).
    pub node_gpus: std::collections::BTreeMap<String, u32>,
    /// The bearer token `/metrics` asks for (`--metrics-token`); `None`: open.
    pub metrics_token: Option<Secret>,
}

impl Config {
    /// Resolves the layers. Fails with a sentence that says what to fix.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let data_dir = args.data_dir.unwrap_or_else(|| PathBuf::from("berth-data"));
        let file_path = data_dir.join("berth.toml");
        let file: FileConfig = match std::fs::read_to_string(&file_path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!("{} is not valid berth configuration", file_path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", file_path.display()))
            }
        };
        warn_unknown_env();
        let docker_host = args
            .docker_host
            .or(file.docker_host)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let docker_socket = docker_host
            .strip_prefix("unix://")
            .map(PathBuf::from)
            .with_context(|| {
                format!("docker host {docker_host} is not supported yet: use a unix:// socket")
            })?;
        let public_url = args.public_url.or(file.public_url);
        if let Some(u) = &public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                anyhow::bail!("public URL {u} must start with http:// or https://");
            }
        }
        Ok(Self {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            storage_dir: args
                .storage_dir
                .or(file.storage_dir)
                .unwrap_or_else(|| data_dir.clone()),
            data_dir,
            database_url: args.database_url.or(file.database_url).map(Secret),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
            console_dir: args
                .console_dir
                .or(file.console_dir)
                .unwrap_or_else(|| PathBuf::from("frontend/dist")),
            docker_socket,
            app_ports: {
                let mode = args
                    .app_mode
                    .or(file.app_mode)
                    .unwrap_or_else(|| "subdomain".into());
                match mode.to_ascii_lowercase().as_str() {
                    "subdomain" => None,
                    "port" => Some(parse_port_range(
                        &args
                            .app_ports
                            .or(file.app_ports)
                            .unwrap_or_else(|| "0".into()),
                    )?),
                    other => anyhow::bail!("app mode {other} is unknown: use subdomain or port"),
                }
            },
            app_base_domain: args
                .app_base_domain
                .or(file.app_base_domain)
                .unwrap_or_else(|| "localhost".into()),
            terminal: {
                let d = wsproxy::TerminalConfig::default();
                let grace = args.terminal_grace_s.or(file.terminal_grace_s);
                let replay = args.terminal_replay_bytes.or(file.terminal_replay_bytes);
                let connect = match args.terminal_connect_s.or(file.terminal_connect_s) {
                    Some(0) => {
                        anyhow::bail!("the terminal connect deadline must be at least 1 second")
                    }
                    Some(s) => std::time::Duration::from_secs(s),
                    None => d.connect_deadline,
                };
                if replay.is_some_and(|r| !(4096..=64 << 20).contains(&r)) {
                    anyhow::bail!(
                        "the terminal replay buffer must be between 4096 bytes and 64 MiB"
                    );
                }
                wsproxy::TerminalConfig {
                    grace: grace.map(std::time::Duration::from_secs).unwrap_or(d.grace),
                    replay_bytes: replay.unwrap_or(d.replay_bytes),
                    connect_deadline: connect,
                }
            },
            header_timeout: match args.header_timeout_s.or(file.header_timeout_s) {
                Some(0) => anyhow::bail!("the header timeout must be at least 1 second"),
                Some(s) => std::time::Duration::from_secs(s),
                None => DEFAULT_HEADER_TIMEOUT,
            },
            max_connections: match args.max_connections.or(file.max_connections) {
                Some(n) if !(1..=1_000_000).contains(&n) => {
                    anyhow::bail!("max connections must be between 1 and 1000000")
                }
                Some(n) => n,
                None => DEFAULT_MAX_CONNECTIONS,
            },
            admin_password: std::env::var("BERTH_ADMIN_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret),
            scheduler: scheduler::Config {
                order: match args.scheduler_order.or(file.scheduler_order) {
                    Some(o) => scheduler::Order::parse(&o).map_err(anyhow::Error::msg)?,
                    None => scheduler::Order::Fifo,
                },
                placement: match args.scheduler_placement.or(file.scheduler_placement) {
                    Some(p) => scheduler::NodeChoice::parse(&p).map_err(anyhow::Error::msg)?,
                    None => scheduler::NodeChoice::Concentrated,
                },
                starvation_after_s: args
                    .starvation_after_s
                    .or(file.starvation_after_s)
                    .unwrap_or(scheduler::DEFAULT_STARVATION_AFTER_S),
            },
            node_check_s: match args.node_check_s.or(file.node_check_s) {
                Some(0) => anyhow::bail!("the node check interval must be at least 1 second"),
                Some(s) => s,
                None => 5,
            },
            node_reserve: api::Resources {
                cpu: match args.node_reserve_cpu.or(file.node_reserve_cpu) {
                    Some(c) => api::Millicores::parse(&c)
                        .map_err(|e| anyhow::anyhow!("node reserve CPU: {e}"))?,
                    None => api::Millicores(0),
                },
                mem: match args.node_reserve_mem.or(file.node_reserve_mem) {
                    Some(m) => api::Bytes::parse(&m)
                        .map_err(|e| anyhow::anyhow!("node reserve memory: {e}"))?,
                    None => api::Bytes(0),
                },
                ..Default::default()
            },
            node_gpus: {
                let g = file.node_gpus.unwrap_or_default();
                if let Some((n, c)) = g.iter().find(|(_, c)| **c > 64) {
                    anyhow::bail!("node_gpus.{n} = {c}: a node declares at most 64 GPUs");
                }
                g
            },
            metrics_token: match args.metrics_token.or(file.metrics_token) {
                Some(t) if t.trim().is_empty() => None,
                Some(t) if t.trim() != t || t.contains(char::is_whitespace) => {
                    anyhow::bail!("the metrics token must not contain spaces")
                }
                Some(t) if t.len() < 16 => {
                    anyhow::bail!("the metrics token must be at least 16 characters long")
                }
                Some(t) => Some(Secret(t)),
                None => None,
            },
            upload_expiry_s: match args.upload_expiry_s.or(file.upload_expiry_s) {
                Some(0) => anyhow::bail!("the upload expiry must be at least 1 second"),
                Some(s) => s,
                None => 24 * 3600,
            },
        })
    }

    /// A configuration for tests: everything under `data_dir`, the local Docker socket.
    pub fn for_tests(data_dir: &Path, admin_password: &str) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            data_dir: data_dir.to_path_buf(),
            storage_dir: data_dir.to_path_buf(),
            database_url: None,
            public_url: None,
            console_dir: data_dir.join("no-console"),
            docker_socket: PathBuf::from("/var/run/docker.sock"),
            terminal: Default::default(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            app_base_domain: "localhost".into(),
            app_ports: None,
            admin_password: Some(Secret(admin_password.to_string())),
            upload_expiry_s: 24 * 3600,
            scheduler: scheduler::Config::default(),
            node_check_s: 5,
            node_reserve: api::Resources::default(),
            node_gpus: Default::default(),
            metrics_token: None,
        }
    }
}

/// A client has this long to send a request's headers (slowloris). The same timer closes a
/// kept-alive connection that stays idle this long, so it is set above the seconds clients
/// commonly leave between two requests on one connection: a close racing a reused
/// connection's next request is what clients see as a dropped request.
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Client connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

const KNOWN_ENV: &[&str] = &[
    "BERTH_LISTEN",
    "BERTH_DATA_DIR",
    "BERTH_DATABASE_URL",
    "BERTH_PUBLIC_URL",
    "BERTH_CONSOLE_DIR",
    "BERTH_DOCKER_HOST",
    "BERTH_TERMINAL_GRACE_S",
    "BERTH_APP_BASE_DOMAIN",
    "BERTH_APP_MODE",
    "BERTH_APP_PORTS",
    "BERTH_TERMINAL_REPLAY_BYTES",
    "BERTH_TERMINAL_CONNECT_S",
    "BERTH_HEADER_TIMEOUT_S",
    "BERTH_MAX_CONNECTIONS",
    "BERTH_UPLOAD_EXPIRY_S",
    "BERTH_SCHEDULER_ORDER",
    "BERTH_SCHEDULER_PLACEMENT",
    "BERTH_STARVATION_AFTER_S",
    "BERTH_NODE_CHECK_S",
    "BERTH_NODE_RESERVE_CPU",
    "BERTH_NODE_RESERVE_MEM",
    "BERTH_METRICS_TOKEN",
    "BERTH_ADMIN_PASSWORD",
    "BERTH_LOG",
    "BERTH_URL",
    "BERTH_KEY",
    "BERTH_CACHE",
    "BERTH_BIN",
];

fn warn_unknown_env() {
    for (k, _) in std::env::vars() {
        if k.starts_with("BERTH_") && !KNOWN_ENV.contains(&k.as_str()) {
            tracing::warn!("environment variable {k} is not a berth setting; it is ignored");
        }
    }
}

/// `FIRST-LAST` (inclusive, 1024–65535) or `0` for any free port.
fn parse_port_range(s: &str) -> anyhow::Result<Option<(u16, u16)>> {
    let s = s.trim();
    if s == "0" {
        return Ok(None);
    }
    let bad = || {
        anyhow::anyhow!(
            "app ports {s} must be FIRST-LAST within 1024-65535, or 0 for any free port"
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a < 1024 || a > b {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_as_stars() {
        let mut c = Config::for_tests(Path::new("/tmp/berth-test"), "hunter2-correct-horse");
        c.metrics_token = Some(Secret("scrape-me-token-42".into()));
        let shown = format!("{c:?}");
        assert!(!shown.contains("scrape-me"), "{shown}");
        assert!(shown.contains("metrics_token: Some(***)"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("admin_password: Some(***)"), "{shown}");
        let pretty = format!("{c:#?}");
        assert!(!pretty.contains("hunter2"), "{pretty}");
        // Still usable as the text it holds.
        assert_eq!(c.admin_password.as_deref(), Some("hunter2-correct-horse"));
    }

    #[test]
    fn a_metrics_token_is_long_and_has_no_spaces() {
        let dir = std::env::temp_dir().join(format!("berth-cfg-{}", std::process::id()));
        let with = |t: &str| {
            Config::resolve(ServeArgs {
                data_dir: Some(dir.clone()),
                docker_host: Some("unix:///var/run/docker.sock".into()),
                metrics_token: Some(t.into()),
                ..Default::default()
            })
        };
        let e = with("short").unwrap_err().to_string();
        assert!(e.contains("at least 16 characters"), "{e}");
        let e = with("a token with spaces in it").unwrap_err().to_string();
        assert!(e.contains("spaces"), "{e}");
        assert_eq!(with("").unwrap().metrics_token, None);
        let c = with("0123456789abcdef-ok").unwrap();
        assert_eq!(c.metrics_token.as_deref(), Some("0123456789abcdef-ok"));
    }
}
