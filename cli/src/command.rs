//! The client commands as one clap subcommand enum, for the `berth` binary to flatten next to
//! `serve`, and [`run`] to dispatch them.

use crate::{
    admin, app, dotfiles, login, node, session, ssh, vfolder, AdminCmd, AppArgs, DotfilesCmd,
    LocalUser, LoginArgs, NodeCmd, Result, SessionCmd, SshArgs, SshKeyCmd, VfolderCmd,
};

/// Every `berth` command but `serve`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Log in to a berth server and keep an API key for the other commands
    Login(LoginArgs),
    /// Launch, list, inspect and end sessions
    Session {
        #[command(subcommand)]
        cmd: SessionCmd,
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
        cmd: VfolderCmd,
    },
    /// Forward a local TCP port to a session's app through the proxy (SSH, databases, …)
    App(AppArgs),
    /// Dotfiles written into every session at start: yours, a project's, the domain's
    #[command(
        after_help = "At start a session gets the domain's dotfiles, then its project's, then yours: \
for the same path yours win. Paths are ~/REL (quote them, or the shell expands ~) and, for a \
project or the domain, /etc/REL.\n\n\
Examples:\n  \
berth dotfiles set '~/.bashrc' --file ~/.bashrc\n  \
berth dotfiles set '~/.local/bin/hello' --file hello.sh --mode 0755\n  \
berth dotfiles set /etc/pip.conf --file pip.conf --project ml     # admins\n  \
berth dotfiles list --domain                                       # admins\n  \
berth dotfiles rm '~/.bashrc'"
    )]
    Dotfiles {
        #[command(subcommand)]
        cmd: DotfilesCmd,
    },
    /// Open a shell in a session over SSH, or run a command there (`berth ssh NAME -- CMD`)
    #[command(
        after_help = "Needs an SSH key of yours (`berth ssh-key add ~/.ssh/id_ed25519.pub`) and the \
system `ssh`. With --stdio it is ssh's ProxyCommand (as `berth ssh-config` writes it).\n\n\
Examples:\n  \
berth ssh nb\n  \
berth ssh nb -- nvidia-smi\n  \
berth ssh-config >> ~/.ssh/config && ssh berth-nb"
    )]
    Ssh(SshArgs),
    /// Print `Host berth-NAME` blocks for your running sessions (ssh, scp, sftp, rsync, VS Code)
    SshConfig,
    /// Your SSH public keys: add, list, rm
    SshKey {
        #[command(subcommand)]
        cmd: SshKeyCmd,
    },
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
        cmd: NodeCmd,
    },
    /// Users, projects, resource policies and usage (admins)
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
}

/// Runs a client command and returns the process exit code (errors printed as `berth: …`).
/// `create_local` is what `admin user add --data-dir` writes with (see [`admin::run`]).
pub async fn run(cmd: Command, create_local: impl AsyncFnOnce(LocalUser) -> Result<()>) -> i32 {
    match cmd {
        Command::Login(args) => crate::run(login(args)).await,
        Command::Session { cmd } => crate::run(session(cmd)).await,
        Command::App(args) => crate::run(app(args)).await,
        Command::Ssh(args) => crate::run(ssh::run(args)).await,
        Command::SshConfig => crate::run(ssh::config_blocks()).await,
        Command::SshKey { cmd } => crate::run(ssh::key(cmd)).await,
        Command::Vfolder { cmd } => crate::run(vfolder(cmd)).await,
        Command::Dotfiles { cmd } => crate::run(dotfiles(cmd)).await,
        Command::Node { cmd } => crate::run(node(cmd)).await,
        Command::Admin { cmd } => crate::run(admin(cmd, create_local)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Berth {
        #[command(subcommand)]
        cmd: Command,
    }

    #[test]
    fn the_client_commands_are_consistent() {
        Berth::command().debug_assert();
        let names: Vec<String> = Berth::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "login",
                "session",
                "vfolder",
                "app",
                "dotfiles",
                "ssh",
                "ssh-config",
                "ssh-key",
                "node",
                "admin"
            ]
        );
        assert!(matches!(
            Berth::try_parse_from(["berth", "vfolder", "ls", "data"])
                .unwrap()
                .cmd,
            Command::Vfolder { .. }
        ));
    }
}
