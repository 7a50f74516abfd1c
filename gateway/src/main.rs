//! The `berth` command line: one binary. `serve` runs the server; `login`, `session`, `app`,
//! `vfolder`, `node` and `admin` are the client side, in [`cli`].

use clap::{Parser, Subcommand};
use gateway::config::{Config, ServeArgs};

mod cli;

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
    /// Log in to a berth server and keep an API key for the other commands
    Login(cli::LoginArgs),
    /// Launch, list, inspect and end sessions
    Session {
        #[command(subcommand)]
        cmd: cli::SessionCmd,
    },
    /// Data folders: create, browse, upload, download, share and clone
    #[command(
        after_help = "A FOLDER is a folder's name or id (or the start of its id). A name means your own \
folder first, then one shared with you, then a project folder. Paths inside a folder are \
relative to it, written FOLDER/PATH (e.g. data/train/images) or as a separate argument.\n\n\
Examples:\n  \
berth vfolder create data\n  \
berth vfolder upload data ./train            # a directory, recursively\n  \
berth vfolder ls data/train\n  \
berth vfolder download data/train/a.csv -o a.csv\n  \
berth vfolder download data                  # the whole folder as data.zip\n  \
berth vfolder invite data bob --perm rw      # bob: berth vfolder accept data\n  \
berth vfolder clone data data-copy"
    )]
    Vfolder {
        #[command(subcommand)]
        cmd: cli::VfolderCmd,
    },
    /// Forward a local TCP port to a session's app through the proxy (SSH, databases, …)
    App(cli::AppArgs),
    /// Docker engines sessions run on: list, show, add, drain, undrain, rm (admins)
    #[command(
        after_help = "A NODE is a node's name or id. The built-in node `local` is the gateway's own \
engine; it can be drained but not removed.\n\n\
Examples:\n  \
berth node list\n  \
berth node add gpu-1 --docker unix:///run/gpu-1/docker.sock --group gpu\n  \
berth node drain gpu-1                       # running sessions go on, no new ones\n  \
berth node undrain gpu-1\n  \
berth node rm gpu-1                          # once it runs no sessions"
    )]
    Node {
        #[command(subcommand)]
        cmd: cli::NodeCmd,
    },
    /// Users, projects and resource policies (admins)
    Admin {
        #[command(subcommand)]
        cmd: cli::AdminCmd,
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
        Cmd::Login(args) => cli::run(cli::login(args)).await,
        Cmd::Session { cmd } => cli::run(cli::session(cmd)).await,
        Cmd::App(args) => cli::run(cli::app(args)).await,
        Cmd::Vfolder { cmd } => cli::run(cli::vfolder(cmd)).await,
        Cmd::Node { cmd } => cli::run(cli::node(cmd)).await,
        Cmd::Admin { cmd } => cli::run(cli::admin(cmd)).await,
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
