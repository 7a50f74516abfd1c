//! The `berth` command line: one binary. `serve` runs the server; `wsproxy` the proxy beside a
//! node (`wsproxy::remote`); `login`, `session`, `app`, `vfolder`, `node` and `admin` are the
//! client side, [`cli::Command`], run by the `cli` crate.

use clap::{Parser, Subcommand};
use gateway::config::{Config, ServeArgs};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Self-hosted compute sessions: containers with a terminal in the browser"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway, the proxy and the web console on one port
    Serve(Box<ServeArgs>),
    /// Run a node's own proxy: its sessions' terminals, apps and tunnels, on tokens the
    /// gateway signs (register it with `berth node add … --proxy-url`)
    Wsproxy(Box<WsproxyArgs>),
    #[command(flatten)]
    Client(cli::Command),
}

/// `berth wsproxy`.
#[derive(clap::Args)]
struct WsproxyArgs {
    /// The node it serves, as registered (`berth node add NAME … --proxy-url URL`)
    #[arg(long, env = "BERTH_PROXY_NODE")]
    node: String,
    /// The node's engine: unix:///var/run/docker.sock, or tcp://HOST:PORT with --tls-dir
    #[arg(long, env = "BERTH_PROXY_DOCKER", value_name = "URL")]
    docker: String,
    /// ca.pem, cert.pem and key.pem for a tcp:// engine
    #[arg(long, env = "BERTH_PROXY_TLS_DIR", value_name = "DIR")]
    tls_dir: Option<std::path::PathBuf>,
    /// The proxy's key, as `berth node add` showed it (prefer --key-file or the environment)
    #[arg(long, env = "BERTH_PROXY_KEY", hide_env_values = true)]
    key: Option<String>,
    /// A file holding the proxy's key
    #[arg(
        long,
        env = "BERTH_PROXY_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "key"
    )]
    key_file: Option<std::path::PathBuf>,
    /// Address to listen on
    #[arg(long, env = "BERTH_PROXY_LISTEN", default_value = "0.0.0.0:8081")]
    listen: std::net::SocketAddr,
    /// The URL clients reach this proxy at, as registered (`--proxy-url`); app hosts are
    /// APP--SESSION.HOST on its port
    #[arg(long, env = "BERTH_PROXY_PUBLIC_URL", value_name = "URL")]
    public_url: String,
    /// Apps open on APP--SESSION.BASE_DOMAIN on the public URL's port (wildcard DNS to this
    /// host); default: the public URL's host, when it is a name
    #[arg(long, env = "BERTH_PROXY_BASE_DOMAIN", value_name = "DOMAIN")]
    base_domain: Option<String>,
    /// Port mode instead of subdomains (no wildcard DNS, or an IP address): each open app
    /// gets a listener from this range, e.g. 41000-41099
    #[arg(long, env = "BERTH_PROXY_APP_PORTS", value_name = "LO-HI")]
    app_ports: Option<String>,
}

impl std::fmt::Debug for WsproxyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsproxyArgs")
            .field("node", &self.node)
            .field("docker", &self.docker)
            .field("tls_dir", &self.tls_dir)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("key_file", &self.key_file)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("base_domain", &self.base_domain)
            .field("app_ports", &self.app_ports)
            .finish()
    }
}

impl WsproxyArgs {
    /// The proxy's configuration, or a sentence saying what to fix.
    fn config(self) -> anyhow::Result<wsproxy::remote::Config> {
        api::nodes::validate_node_name("node", &self.node)
            .map_err(|m| anyhow::anyhow!("--node: {m}"))?;
        let key = match (self.key, &self.key_file) {
            (Some(k), _) => k,
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read the key file {}: {e}", f.display()))?,
            (None, None) => anyhow::bail!(
                "give the proxy's key: --key-file FILE, BERTH_PROXY_KEY or --key (`berth node add … --proxy-url` showed it)"
            ),
        };
        let key = key.trim().to_string();
        if key.len() < 32 {
            anyhow::bail!(
                "the proxy's key is too short; use the one `berth node add … --proxy-url` showed"
            );
        }
        let public_url = api::nodes::validate_proxy_url(&self.public_url)
            .map_err(|m| anyhow::anyhow!("--public-url: {m}"))?;
        let host = url::Url::parse(&public_url)
            .ok()
            .and_then(|u| match u.host() {
                Some(url::Host::Domain(d)) => Some(d.to_string()),
                _ => None,
            });
        let port_mode = match &self.app_ports {
            Some(r) => {
                let range = r
                    .split_once('-')
                    .and_then(|(lo, hi)| {
                        Some((
                            lo.trim().parse::<u16>().ok()?,
                            hi.trim().parse::<u16>().ok()?,
                        ))
                    })
                    .filter(|(lo, hi)| 1024 < *lo && lo <= hi)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--app-ports is a range LO-HI of ports above 1024, e.g. 41000-41099"
                        )
                    })?;
                Some(wsproxy::PortMode {
                    ip: self.listen.ip(),
                    range: Some(range),
                    limits: wsproxy::listen::Limits {
                        header_timeout: std::time::Duration::from_secs(30),
                        max_connections: 10_000,
                    },
                })
            }
            None => None,
        };
        let base_domain = match (self.base_domain, host) {
            (Some(d), _) => d,
            (None, Some(h)) => h,
            (None, None) if port_mode.is_some() => "invalid".to_string(),
            (None, None) => anyhow::bail!(
                "the public URL's host is an address: apps need --base-domain (a name with wildcard DNS to this host) or --app-ports"
            ),
        };
        Ok(wsproxy::remote::Config {
            node: self.node,
            docker: self.docker,
            tls_dir: self.tls_dir,
            key: wsproxy::token::Key::new(key),
            public_url,
            base_domain,
            port_mode,
            terminal: wsproxy::TerminalConfig::default(),
        })
    }
}

async fn wsproxy_main(args: WsproxyArgs) -> anyhow::Result<()> {
    let listen = args.listen;
    let config = args.config()?;
    let node = config.node.clone();
    let public = config.public_url.clone();
    let remote = wsproxy::remote::Remote::new(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%node, "berth wsproxy listening on {addr} (public URL {public})");
    println!("berth wsproxy: node {node}, listening on http://{addr} (public URL {public})");
    remote.serve(listener, shutdown_signal()).await?;
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    gateway::serve(config, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// `berth admin user add --data-dir`: the user straight into the data directory's database,
/// or into the PostgreSQL database `BERTH_DATABASE_URL` names, as `berth serve` would use.
async fn create_local_user(u: cli::LocalUser) -> cli::Result<()> {
    let url = std::env::var("BERTH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let db = gateway::db::open(&u.dir, url.as_deref())
        .await
        .map_err(|e| cli::Error::Other(format!("{e:#}")))?;
    gateway::auth::create_user(&db, &u.username, &u.password.0, u.role)
        .await
        .map_err(|e| match e {
            gateway::error::AppError::Problem(p) => cli::Error::Problem {
                problem: Box::new(p),
                hint: None,
            },
            gateway::error::AppError::Internal(e) => cli::Error::Other(format!("{e:#}")),
        })?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Serve(args) => {
            init_logging();
            match serve(*args).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    1
                }
            }
        }
        Cmd::Wsproxy(args) => {
            init_logging();
            match wsproxy_main(*args).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    1
                }
            }
        }
        Cmd::Client(cmd) => cli::run_command(cmd, create_local_user).await,
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
