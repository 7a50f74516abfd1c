//! `berth vfolder …`: data folders from the command line. Folders are created, listed,
//! browsed, renamed, trashed, shared (invitations, members, leaving) and cloned (a job whose
//! progress is shown); files are uploaded with tus 1.0 (streamed from disk in chunks, resumed
//! from the server's offset after a dropped connection), downloaded (streamed to `OUT.part`,
//! then renamed; a directory as a zip), made, moved and deleted.
//!
//! A folder is named by its id, its name — my own folder first, then one shared with me,
//! then a project folder — or the start of its id. Folder names and paths inside a folder are
//! checked with `api::vfolders` before anything is sent.
//!
//! Layout by feature: [`resolve`] (naming folders and `FOLDER[/PATH]` targets), [`folders`]
//! (create, list, rename, trash, restore, purge), [`files`] (ls, mkdir, mv, rm), [`upload`]
//! (walking local files), [`tus`] (the tus requests and resumable sends), [`download`],
//! [`share`] (invitations, members, leaving), [`clone`] (jobs), [`progress`] (the terminal's
//! progress line).

use self::clone::clone;
use self::download::download;
use self::files::{ls, mkdir, mv, rm};
use self::folders::{create, list, purge, rename, restore, trash};
use self::share::{accept, decline, invitations, invite, leave, members, unshare};
use self::upload::upload;
use super::{connect, Result};
use std::path::PathBuf;
use std::time::Duration;

mod clone;
mod download;
mod files;
mod folders;
mod progress;
mod resolve;
mod share;
mod tus;
mod upload;

/// The tus protocol version berth speaks.
const TUS: &str = "1.0.0";
/// The most entries one listing request asks for (the server's maximum).
const PAGE: u64 = 1000;
/// How long a download may go without receiving a byte.
const READ_IDLE: Duration = Duration::from_secs(120);

/// `berth vfolder …`.
#[derive(Debug, clap::Subcommand)]
pub enum VfolderCmd {
    /// Create a folder of yours, or a project's folder with --project (admins)
    Create {
        /// Folder name: letters, digits, '.', '_' and '-'
        name: String,
        /// Make it a folder of this project (name or id), shared by its members
        #[arg(long)]
        project: Option<String>,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// List the folders you can use: yours, shared with you, and your projects'
    List {
        /// List your folders in the trash instead
        #[arg(long)]
        trash: bool,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// List the files in a folder, or in one of its directories
    Ls {
        /// Folder name or id, optionally followed by /PATH
        #[arg(value_name = "FOLDER[/PATH]")]
        target: String,
        /// A directory inside the folder (instead of FOLDER/PATH)
        path: Option<String>,
        /// Print the listing as JSON (all pages in one)
        #[arg(long)]
        json: bool,
    },
    /// Upload a file, or a directory with everything in it (resumable; never overwrites)
    Upload(UploadArgs),
    /// Download a file, or a directory (or the whole folder) as a .zip
    Download {
        /// Folder name or id, optionally followed by /PATH
        #[arg(value_name = "FOLDER[/PATH]")]
        target: String,
        /// Where to save it: a file name, an existing directory, or - for standard output
        /// (default: the file's own name, or NAME.zip, in the current directory)
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Replace OUT when it exists
        #[arg(long)]
        force: bool,
    },
    /// Make a directory (and any missing parents) in a folder
    Mkdir {
        /// Folder name or id, optionally followed by /PATH
        #[arg(value_name = "FOLDER[/PATH]")]
        target: String,
        /// The directory to make (instead of FOLDER/PATH)
        path: Option<String>,
    },
    /// Move or rename a file or directory inside a folder (never overwrites)
    Mv {
        /// Folder name or id
        folder: String,
        /// What to move
        from: String,
        /// Its new path
        to: String,
    },
    /// Delete files or directories (with everything in them) from a folder
    Rm {
        /// Folder name or id
        folder: String,
        /// Paths inside the folder
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Invite a user to a folder of yours; it is shared with them once they accept
    Invite {
        /// Folder name or id
        folder: String,
        /// Username or user id
        user: String,
        /// ro (read), rw (read and write) or wd (read, write and delete)
        #[arg(long, value_name = "ro|rw|wd", default_value = "ro")]
        perm: String,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Invitations to folders that wait for your answer
    Invitations {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Accept an invitation: the folder becomes usable by you
    Accept {
        /// The invitation's id, the start of it, or the folder's name
        invitation: String,
        /// Print the server's JSON of the folder
        #[arg(long)]
        json: bool,
    },
    /// Decline an invitation
    Decline {
        /// The invitation's id, the start of it, or the folder's name
        invitation: String,
    },
    /// List the people a folder of yours is shared with
    Members {
        /// Folder name or id
        folder: String,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop sharing a folder of yours with someone
    Unshare {
        /// Folder name or id
        folder: String,
        /// Username or user id
        user: String,
    },
    /// Stop using a folder someone shared with you
    Leave {
        /// Folder name or id
        folder: String,
    },
    /// Copy a folder into a new folder of yours, waiting and showing the progress
    Clone {
        /// Folder name or id (yours or shared with you)
        folder: String,
        /// The new folder's name
        name: String,
        /// Return at once and print the job instead of waiting for it
        #[arg(long)]
        no_wait: bool,
        /// Print the server's JSON of the job
        #[arg(long)]
        json: bool,
    },
    /// Rename a folder of yours
    Rename {
        /// Folder name or id
        folder: String,
        /// Its new name
        name: String,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Move a folder of yours to the trash (`restore` brings it back)
    #[command(visible_alias = "rm-folder")]
    Delete {
        /// Folder name or id
        folder: String,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Take a folder out of the trash
    Restore {
        /// Name or id of a folder in your trash
        folder: String,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a folder in the trash for good, with all its files
    Purge {
        /// Name or id of a folder in your trash
        folder: String,
    },
}

/// `berth vfolder upload`.
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// Folder name or id, optionally followed by /PATH (instead of REMOTE_PATH)
    #[arg(value_name = "FOLDER[/PATH]")]
    pub folder: String,
    /// The local file or directory
    pub local: PathBuf,
    /// Where in the folder: a new name, or an existing directory to put it in (a trailing /
    /// makes it a directory); default: its own name at the top of the folder
    #[arg(value_name = "REMOTE_PATH")]
    pub remote: Option<String>,
    /// Bytes sent per request; an interrupted request resumes where the server stopped
    #[arg(long, value_name = "SIZE", default_value = "64m", value_parser = parse_chunk)]
    pub chunk_size: u64,
}

fn parse_chunk(s: &str) -> std::result::Result<u64, String> {
    api::Bytes::parse_size(s, "The chunk size").map(|b| b.0)
}

/// Runs a `vfolder` command.
pub async fn run(cmd: VfolderCmd) -> Result<()> {
    let c = connect()?;
    match cmd {
        VfolderCmd::Create {
            name,
            project,
            json,
        } => create(&c, name, project, json).await,
        VfolderCmd::List { trash, json } => list(&c, trash, json).await,
        VfolderCmd::Ls { target, path, json } => ls(&c, &target, path.as_deref(), json).await,
        VfolderCmd::Upload(a) => upload(&c, a).await,
        VfolderCmd::Download {
            target,
            output,
            force,
        } => download(&c, &target, output, force).await,
        VfolderCmd::Mkdir { target, path } => mkdir(&c, &target, path.as_deref()).await,
        VfolderCmd::Mv { folder, from, to } => mv(&c, &folder, &from, &to).await,
        VfolderCmd::Rm { folder, paths } => rm(&c, &folder, &paths).await,
        VfolderCmd::Invite {
            folder,
            user,
            perm,
            json,
        } => invite(&c, &folder, &user, &perm, json).await,
        VfolderCmd::Invitations { json } => invitations(&c, json).await,
        VfolderCmd::Accept { invitation, json } => accept(&c, &invitation, json).await,
        VfolderCmd::Decline { invitation } => decline(&c, &invitation).await,
        VfolderCmd::Members { folder, json } => members(&c, &folder, json).await,
        VfolderCmd::Unshare { folder, user } => unshare(&c, &folder, &user).await,
        VfolderCmd::Leave { folder } => leave(&c, &folder).await,
        VfolderCmd::Clone {
            folder,
            name,
            no_wait,
            json,
        } => clone(&c, &folder, &name, no_wait, json).await,
        VfolderCmd::Rename { folder, name, json } => rename(&c, &folder, &name, json).await,
        VfolderCmd::Delete { folder, json } => trash(&c, &folder, json).await,
        VfolderCmd::Restore { folder, json } => restore(&c, &folder, json).await,
        VfolderCmd::Purge { folder } => purge(&c, &folder).await,
    }
}

#[cfg(test)]
/// A folder for the tests.
fn test_folder(
    id: &str,
    name: &str,
    kind: &str,
    owner: &str,
    perm: api::vfolders::Permission,
) -> api::vfolders::VFolder {
    api::vfolders::VFolder {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
        owner: owner.into(),
        project: None,
        permission: perm,
        bytes: 3 << 20,
        quota_bytes: Some(1 << 30),
        created_at: "2025-01-01T00:00:00Z".into(),
        deleted_at: None,
        state: "READY".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: VfolderCmd,
    }

    fn parse(args: &[&str]) -> std::result::Result<VfolderCmd, clap::Error> {
        T::try_parse_from(std::iter::once("vfolder").chain(args.iter().copied())).map(|t| t.cmd)
    }

    #[test]
    fn arguments_parse() {
        assert!(matches!(
            parse(&["upload", "data", "f.bin"]).unwrap(),
            VfolderCmd::Upload(UploadArgs { chunk_size, remote: None, .. }) if chunk_size == 64 << 20
        ));
        assert!(matches!(
            parse(&["upload", "data", "f.bin", "dir/", "--chunk-size", "1m"]).unwrap(),
            VfolderCmd::Upload(UploadArgs { chunk_size, remote: Some(_), .. }) if chunk_size == 1 << 20
        ));
        assert_eq!(
            parse(&["upload", "data", "f", "--chunk-size", "x"])
                .err()
                .unwrap()
                .exit_code(),
            2
        );
        assert!(parse(&["rm", "data"]).is_err());
        assert!(matches!(
            parse(&["rm-folder", "data"]).unwrap(),
            VfolderCmd::Delete { .. }
        ));
        assert!(matches!(
            parse(&["invite", "data", "bob"]).unwrap(),
            VfolderCmd::Invite { perm, .. } if perm == "ro"
        ));
    }
}
