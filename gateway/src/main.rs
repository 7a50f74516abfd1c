//! The `berth` command line: one binary, small subcommand functions.

use clap::{Parser, Subcommand};
use gateway::config::{Config, ServeArgs};
use std::io::BufRead;
use std::path::PathBuf;

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
    Serve(ServeArgs),
    /// Administration on this machine's data directory
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Manage users
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input
    Add {
        username: String,
        /// user, admin or superadmin
        #[arg(long, default_value = "user")]
        role: String,
        #[arg(long, env = "BERTH_DATA_DIR", default_value = "berth-data")]
        data_dir: PathBuf,
    },
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

async fn user_add(username: String, role: String, data_dir: PathBuf) -> anyhow::Result<()> {
    let mut password = String::new();
    if atty_stdin() {
        eprint!("Password for {username}: ");
    }
    std::io::stdin().lock().read_line(&mut password)?;
    let req = api::auth::CreateUser {
        username: username.clone(),
        password: api::auth::Secret(password.trim_end_matches(['\r', '\n']).to_string()),
        role: Some(role),
    };
    let role = req.validate().map_err(|errs| {
        anyhow::anyhow!(errs
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join(" "))
    })?;
    let db = gateway::db::open(&data_dir).await?;
    gateway::auth::create_user(&db, &username, &req.password.0, role)
        .await
        .map_err(|e| match e {
            gateway::error::AppError::Problem(p) => anyhow::anyhow!(p.detail),
            gateway::error::AppError::Internal(e) => e,
        })?;
    println!("created user {username} ({})", role.as_str().to_lowercase());
    Ok(())
}

fn atty_stdin() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

#[tokio::main]
async fn main() {
    init_logging();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Serve(args) => serve(args).await,
        Cmd::Admin {
            cmd:
                AdminCmd::User {
                    cmd:
                        UserCmd::Add {
                            username,
                            role,
                            data_dir,
                        },
                },
        } => user_add(username, role, data_dir).await,
    };
    if let Err(e) = res {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
}
