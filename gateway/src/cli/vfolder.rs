//! `berth vfolder …`: data folders from the command line. Folders are created, listed,
//! browsed, renamed, trashed, shared (invitations, members, leaving) and cloned (a job whose
//! progress is shown); files are uploaded with tus 1.0 (streamed from disk in chunks, resumed
//! from the server's offset after a dropped connection), downloaded (streamed to `OUT.part`,
//! then renamed; a directory as a zip), made, moved and deleted.
//!
//! A folder is named by its id, its name — my own folder first, then one shared with me,
//! then a project folder — or the start of its id. Folder names and paths inside a folder are
//! checked with `api::vfolders` before anything is sent.

use super::client::{api_path, causes, segment, Answer, Client};
use super::table::{self, Table};
use super::{connect, Error, Result};
use api::vfolders::{self as vf, FileList, Invitation, Job, Member, Permission, VFolder};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::Method;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The tus protocol version berth speaks.
const TUS: &str = "1.0.0";
/// The most entries one listing request asks for (the server's maximum).
const PAGE: u64 = 1000;
/// How long a download may go without receiving a byte.
const READ_IDLE: Duration = Duration::from_secs(120);

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

// ---- Naming folders, invitations and paths ----

/// How strongly a name binds: my own folder, one shared with me, a project folder.
fn rank(f: &VFolder) -> u8 {
    api::vfolders::name_rank(&f.kind, f.permission)
}

/// The one item whose id starts with `arg` (4 characters at least); `too_many` is the
/// sentence when several do.
fn by_id_prefix<'a, T>(
    list: &'a [T],
    arg: &str,
    id: impl Fn(&T) -> &str,
    too_many: impl FnOnce(usize) -> String,
) -> Result<Option<&'a T>> {
    let want = arg.to_ascii_lowercase();
    if want.len() < 4 {
        return Ok(None);
    }
    let found: Vec<&T> = list.iter().filter(|x| id(x).starts_with(&want)).collect();
    match found[..] {
        [one] => Ok(Some(one)),
        [] => Ok(None),
        _ => Err(Error::Other(too_many(found.len()))),
    }
}

/// Picks the folder `arg` names among `list`: an id, else a name (my own first, then one
/// shared with me, then a project folder), else a unique start of an id. `trash` says the
/// list is my trash (for the sentences).
pub fn pick<'a>(list: &'a [VFolder], arg: &str, trash: bool) -> Result<&'a VFolder> {
    if let Some(f) = list.iter().find(|f| f.id == arg) {
        return Ok(f);
    }
    let named: Vec<&VFolder> = list.iter().filter(|f| f.name == arg).collect();
    if let Some(best) = named.iter().map(|f| rank(f)).min() {
        let top: Vec<&VFolder> = named.into_iter().filter(|f| rank(f) == best).collect();
        if let [one] = top[..] {
            return Ok(one);
        }
        let whose = if trash {
            "in your trash"
        } else {
            match best {
                0 => "of yours",
                1 => "shared with you",
                _ => "of your projects",
            }
        };
        let which: Vec<String> = top
            .iter()
            .map(|f| format!("{} (owner {})", f.id, f.owner))
            .collect();
        return Err(Error::Other(format!(
            "{} folders {whose} are named \"{arg}\": {}; name one by its id.",
            top.len(),
            which.join(", ")
        )));
    }
    if let Some(f) = by_id_prefix(
        list,
        arg,
        |f| &f.id,
        |n| format!("\"{arg}\" is the start of {n} folder ids; give more of the id or the name."),
    )? {
        return Ok(f);
    }
    Err(Error::Other(if trash {
        format!(
            "There is no folder named \"{}\" in your trash; `berth vfolder list --trash` shows what is there.",
            arg.escape_default()
        )
    } else {
        format!(
            "There is no folder named \"{}\"; `berth vfolder list` shows the folders you can use.",
            arg.escape_default()
        )
    }))
}

/// `GET /vfolders` (or my trash), the answer and the folders in it.
async fn folders(c: &Client, trash: bool) -> Result<(Answer, Vec<VFolder>)> {
    let path = if trash {
        format!("{}?trash=true", api_path(&["vfolders"]))
    } else {
        api_path(&["vfolders"])
    };
    let answer = c.get(&path).await?;
    let list = answer.json()?;
    Ok((answer, list))
}

/// The folder `arg` names (an id is asked for directly; it may be in the trash).
async fn resolve_in(c: &Client, arg: &str, trash: bool) -> Result<VFolder> {
    if arg.is_empty() {
        return Err(Error::Usage("Name a folder by its name or id.".into()));
    }
    if uuid::Uuid::parse_str(arg).is_ok() {
        return c
            .get(&api_path(&["vfolders", &arg.to_ascii_lowercase()]))
            .await?
            .json();
    }
    let (_, list) = folders(c, trash).await?;
    pick(&list, arg, trash).cloned()
}

async fn resolve(c: &Client, arg: &str) -> Result<VFolder> {
    resolve_in(c, arg, false).await
}

/// A folder and a path inside it, from `FOLDER[/PATH]` and an optional separate PATH.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub folder: String,
    /// Normalised; empty for the folder itself.
    pub path: String,
    /// The path was written with a trailing `/`: it names a directory.
    pub dir: bool,
}

pub fn split_target(target: &str, extra: Option<&str>) -> Result<Target> {
    let (folder, inline) = match target.split_once('/') {
        Some((f, p)) => (f, Some(p)),
        None => (target, None),
    };
    if folder.is_empty() {
        return Err(Error::Usage(format!(
            "\"{}\" does not start with a folder; write FOLDER/PATH, like data/train.csv.",
            target.escape_default()
        )));
    }
    let raw = match (inline, extra) {
        (Some(p), Some(_)) if !p.is_empty() => {
            return Err(Error::Usage(
                "Give the path once: as FOLDER/PATH or as a separate argument, not both.".into(),
            ))
        }
        (_, Some(e)) => e,
        (Some(p), None) => p,
        (None, None) => "",
    };
    let path = vf::normalize_path(raw).map_err(Error::Usage)?;
    Ok(Target {
        folder: folder.to_string(),
        dir: raw.ends_with('/') || path.is_empty(),
        path,
    })
}

fn entry_path(p: &str) -> Result<String> {
    vf::normalize_entry_path(p).map_err(Error::Usage)
}

/// `folder/path` for sentences.
fn shown(f: &VFolder, path: &str) -> String {
    if path.is_empty() {
        f.name.clone()
    } else {
        format!("{}/{path}", f.name)
    }
}

// ---- Folders ----

async fn create(c: &Client, name: String, project: Option<String>, json: bool) -> Result<()> {
    let req = vf::CreateVFolder {
        name,
        kind: project.as_ref().map(|_| "project".to_string()),
        project,
    };
    req.validate().map_err(|errs| {
        Error::Usage(
            errs.into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let body = serde_json::to_value(&req).map_err(|e| Error::Other(e.to_string()))?;
    let answer = c.post(&api_path(&["vfolders"]), &body).await?;
    let f: VFolder = answer.json()?;
    if json {
        println!("{}", answer.pretty()?);
    } else if f.kind == "project" {
        println!(
            "Created folder {} of project {} ({}).",
            f.name, f.owner, f.id
        );
    } else {
        println!("Created folder {} ({}).", f.name, f.id);
    }
    Ok(())
}

/// `used / quota` in short binary units.
fn usage(f: &VFolder) -> String {
    let quota = f
        .quota_bytes
        .map(|q| api::Bytes(q).human())
        .unwrap_or_else(|| "unlimited".into());
    let mut out = format!("{} / {quota}", api::Bytes(f.bytes).human());
    if f.state != "READY" {
        out.push_str(&format!(" ({})", f.state.to_ascii_lowercase()));
    }
    out
}

/// The table `vfolder list` prints (with when each went to the trash for `--trash`).
pub fn folders_table(list: &[VFolder], trash: bool) -> Table {
    let mut t = if trash {
        Table::new(&[
            "NAME",
            "TYPE",
            "OWNER",
            "PERMISSION",
            "USAGE",
            "DELETED",
            "ID",
        ])
    } else {
        Table::new(&["NAME", "TYPE", "OWNER", "PERMISSION", "USAGE", "ID"])
    };
    for f in list {
        let mut row = vec![
            f.name.clone(),
            f.kind.clone(),
            f.owner.clone(),
            f.permission.as_str().to_string(),
            usage(f),
        ];
        if trash {
            row.push(match &f.deleted_at {
                Some(t) => format!("{} ago", table::age(t)),
                None => "-".into(),
            });
        }
        row.push(f.id.chars().take(8).collect());
        t.row(row);
    }
    t
}

async fn list(c: &Client, trash: bool, json: bool) -> Result<()> {
    let (answer, list) = folders(c, trash).await?;
    if json {
        println!("{}", answer.pretty()?);
    } else if list.is_empty() {
        eprintln!(
            "{}",
            if trash {
                "Your trash is empty."
            } else {
                "No folders yet; `berth vfolder create NAME` makes one."
            }
        );
    } else {
        print!("{}", folders_table(&list, trash).render());
    }
    Ok(())
}

async fn rename(c: &Client, arg: &str, name: &str, json: bool) -> Result<()> {
    vf::validate_name(name).map_err(Error::Usage)?;
    let f = resolve(c, arg).await?;
    let answer = c
        .patch(&api_path(&["vfolders", &f.id]), &json!({ "name": name }))
        .await?;
    if json {
        println!("{}", answer.pretty()?);
    } else {
        println!("Renamed folder {} to {name}.", f.name);
    }
    Ok(())
}

async fn trash(c: &Client, arg: &str, json: bool) -> Result<()> {
    let f = resolve(c, arg).await?;
    let answer = c.delete(&api_path(&["vfolders", &f.id])).await?;
    if json {
        println!("{}", answer.pretty()?);
    } else {
        println!(
            "Moved folder {} to the trash; `berth vfolder restore {}` brings it back.",
            f.name, f.name
        );
    }
    Ok(())
}

async fn restore(c: &Client, arg: &str, json: bool) -> Result<()> {
    let f = resolve_in(c, arg, true).await?;
    let answer = c
        .post(&api_path(&["vfolders", &f.id, "restore"]), &json!({}))
        .await?;
    if json {
        println!("{}", answer.pretty()?);
    } else {
        println!("Restored folder {} from the trash.", f.name);
    }
    Ok(())
}

async fn purge(c: &Client, arg: &str) -> Result<()> {
    let f = resolve_in(c, arg, true).await?;
    c.post(&api_path(&["vfolders", &f.id, "purge"]), &json!({}))
        .await?;
    println!("Deleted folder {} and its files for good.", f.name);
    Ok(())
}

// ---- Files ----

/// Every entry of a directory, page by page; the first answer too when it held them all.
async fn list_files(c: &Client, id: &str, path: &str) -> Result<(Option<Answer>, FileList)> {
    let mut offset = 0u64;
    let mut all: Option<FileList> = None;
    let mut first = None;
    loop {
        let q = format!(
            "{}?path={}&offset={offset}&limit={PAGE}",
            api_path(&["vfolders", id, "files"]),
            segment(path)
        );
        let answer = c.get(&q).await?;
        let page: FileList = answer.json()?;
        let n = page.entries.len() as u64;
        let total = page.total;
        match &mut all {
            None => {
                all = Some(page);
                first = Some(answer);
            }
            Some(a) => {
                a.entries.extend(page.entries);
                a.total = total;
                first.take();
            }
        }
        offset += n;
        if n == 0 || offset >= total {
            break;
        }
    }
    let all = all.unwrap_or(FileList {
        path: path.to_string(),
        entries: Vec::new(),
        total: 0,
        offset: 0,
    });
    Ok((first, all))
}

/// The table `vfolder ls` prints.
pub fn files_table(list: &FileList) -> Table {
    let mut t = Table::new(&["NAME", "KIND", "SIZE", "MODIFIED"]);
    for e in &list.entries {
        t.row(vec![
            e.name.clone(),
            e.kind.clone(),
            if e.kind == "dir" {
                "-".into()
            } else {
                api::Bytes(e.size).human()
            },
            e.modified.clone(),
        ]);
    }
    t
}

async fn ls(c: &Client, target: &str, path: Option<&str>, json: bool) -> Result<()> {
    let t = split_target(target, path)?;
    let f = resolve(c, &t.folder).await?;
    let (first, list) = list_files(c, &f.id, &t.path).await?;
    if json {
        match first {
            Some(a) => println!("{}", a.pretty()?),
            None => println!(
                "{}",
                serde_json::to_string_pretty(&list).map_err(|e| Error::Other(e.to_string()))?
            ),
        }
    } else if list.entries.is_empty() {
        eprintln!("{} is empty.", shown(&f, &t.path));
    } else {
        print!("{}", files_table(&list).render());
    }
    Ok(())
}

async fn mkdir(c: &Client, target: &str, path: Option<&str>) -> Result<()> {
    let t = split_target(target, path)?;
    if t.path.is_empty() {
        return Err(Error::Usage(
            "Name the directory to make, like data/new-dir.".into(),
        ));
    }
    let f = resolve(c, &t.folder).await?;
    c.post(
        &api_path(&["vfolders", &f.id, "mkdir"]),
        &json!({ "path": t.path }),
    )
    .await?;
    println!("Made directory {}.", shown(&f, &t.path));
    Ok(())
}

async fn mv(c: &Client, arg: &str, from: &str, to: &str) -> Result<()> {
    let (from, to) = (entry_path(from)?, entry_path(to)?);
    let f = resolve(c, arg).await?;
    c.post(
        &api_path(&["vfolders", &f.id, "move"]),
        &json!({ "from": from, "to": to }),
    )
    .await?;
    println!("Moved {} to {}.", shown(&f, &from), shown(&f, &to));
    Ok(())
}

async fn rm(c: &Client, arg: &str, paths: &[String]) -> Result<()> {
    let paths = paths
        .iter()
        .map(|p| entry_path(p))
        .collect::<Result<Vec<_>>>()?;
    let f = resolve(c, arg).await?;
    let mut deleted = 0u64;
    for batch in paths.chunks(vf::MAX_DELETE_PATHS) {
        let v = c
            .post(
                &api_path(&["vfolders", &f.id, "delete-files"]),
                &json!({ "paths": batch }),
            )
            .await?
            .value()?;
        deleted += v["deleted"].as_u64().unwrap_or(0);
    }
    println!(
        "Deleted {deleted} {} from folder {}.",
        if deleted == 1 { "entry" } else { "entries" },
        f.name
    );
    Ok(())
}

// ---- Progress on a terminal ----

/// A progress line on standard error, drawn only when it is a terminal.
struct Progress {
    on: bool,
    label: String,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
}

type SharedProgress = Arc<Mutex<Progress>>;

impl Progress {
    fn new(label: String, total: Option<u64>) -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            label,
            total,
            start: Instant::now(),
            last: None,
        }
    }

    fn shared(self) -> SharedProgress {
        Arc::new(Mutex::new(self))
    }

    /// Redraws the line for `done` bytes, at most five times a second unless `force`.
    fn show(&mut self, done: u64, force: bool) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.start).as_secs_f64();
        let rate = if secs > 0.5 {
            format!("  {}/s", api::Bytes((done as f64 / secs) as u64).human())
        } else {
            String::new()
        };
        let amount = match self.total {
            Some(t) if t > 0 => format!(
                "{} / {}  {:>3}%",
                api::Bytes(done).human(),
                api::Bytes(t).human(),
                done.min(t) * 100 / t
            ),
            _ => api::Bytes(done).human(),
        };
        eprint!(
            "\r\x1b[K{}  {amount}{rate}",
            table::truncate(&self.label, 40)
        );
        let _ = std::io::stderr().flush();
    }

    /// Clears the line.
    fn done(&mut self) {
        if self.on && self.last.is_some() {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
        self.last = None;
    }

    /// A message on its own line (the progress line is redrawn after it).
    fn say(&mut self, msg: &str) {
        self.done();
        eprintln!("{msg}");
    }
}

fn lock(p: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- Uploads (tus 1.0) ----

/// How an upload retries a request that failed on the way: `attempts` times in a row without
/// progress, waiting `first`, then twice as long each time.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
}

pub const RETRY: Retry = Retry {
    attempts: 5,
    first: Duration::from_secs(1),
};

/// A failed tus request: whether asking the server for its offset and trying again may help.
enum Failed {
    Transient(Error),
    Fatal(Error),
}

/// Statuses worth another try: a conflicting offset or writer, or a server in trouble.
fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 423 | 429 | 500 | 502 | 503 | 504)
}

fn upload_offset(h: &HeaderMap) -> Option<u64> {
    h.get("upload-offset")?.to_str().ok()?.trim().parse().ok()
}

/// A request of `n` bytes may take a minute plus the time at 128 KiB/s; a slower one is cut
/// and resumed from what arrived.
fn patch_timeout(n: u64) -> Duration {
    Duration::from_secs(60 + n / (128 * 1024))
}

/// `POST …/uploads`: announces the file; returns the upload's location.
async fn tus_create(c: &Client, folder: &str, dest: &str, len: u64) -> Result<String> {
    let filename = dest.rsplit('/').next().unwrap_or(dest);
    let resp = c
        .request(Method::POST, &api_path(&["vfolders", folder, "uploads"]))?
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", len)
        .header(
            "Upload-Metadata",
            api::vfolders::upload_metadata(dest, Some(filename)),
        )
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| c.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(c.refused(resp).await);
    }
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Other("the server did not say where the upload goes (no Location).".into())
        })
}

/// `HEAD` of an upload: the bytes the server has.
async fn tus_head(c: &Client, loc: &str) -> std::result::Result<u64, Failed> {
    let req = c
        .request(Method::HEAD, loc)
        .map_err(Failed::Fatal)?
        .header("Tus-Resumable", TUS)
        .timeout(Duration::from_secs(60));
    match req.send().await {
        Err(e) => Err(Failed::Transient(c.unreachable(&e))),
        Ok(r) if r.status().is_success() => upload_offset(r.headers()).ok_or_else(|| {
            Failed::Fatal(Error::Other(
                "the server did not say how much of the upload it has (no Upload-Offset).".into(),
            ))
        }),
        Ok(r) => {
            let status = r.status().as_u16();
            let e = c.refused(r).await;
            Err(if transient_status(status) && status != 409 {
                Failed::Transient(e)
            } else {
                Failed::Fatal(e)
            })
        }
    }
}

/// `PATCH` of `n` bytes of `local` from `offset`, streamed from disk; returns the server's
/// new offset. `before` is what earlier files sent, for the progress line.
async fn tus_patch(
    c: &Client,
    loc: &str,
    local: &Path,
    offset: u64,
    n: u64,
    progress: &SharedProgress,
    before: u64,
) -> std::result::Result<u64, Failed> {
    let cannot_read = |e: std::io::Error| {
        Failed::Fatal(Error::Other(format!(
            "cannot read {}: {e}",
            local.display()
        )))
    };
    let mut file = tokio::fs::File::open(local).await.map_err(cannot_read)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(cannot_read)?;
    let p = progress.clone();
    let mut streamed = 0u64;
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file.take(n), 256 * 1024).map(move |chunk| {
            if let Ok(b) = &chunk {
                streamed += b.len() as u64;
                lock(&p).show(before + offset + streamed, false);
            }
            chunk
        });
    let req = c
        .request(Method::PATCH, loc)
        .map_err(Failed::Fatal)?
        .header("Tus-Resumable", TUS)
        .header(CONTENT_TYPE, "application/offset+octet-stream")
        .header("Upload-Offset", offset)
        .header(CONTENT_LENGTH, n)
        .timeout(patch_timeout(n))
        .body(reqwest::Body::wrap_stream(stream));
    match req.send().await {
        Err(e) => Err(Failed::Transient(c.unreachable(&e))),
        Ok(r) if r.status().is_success() => upload_offset(r.headers()).ok_or_else(|| {
            Failed::Fatal(Error::Other(
                "the server did not say how much of the upload it has (no Upload-Offset).".into(),
            ))
        }),
        Ok(r) => {
            let status = r.status().as_u16();
            let e = c.refused(r).await;
            Err(if transient_status(status) {
                Failed::Transient(e)
            } else {
                Failed::Fatal(e)
            })
        }
    }
}

/// `DELETE` of an unfinished upload, so it holds no quota; best effort.
async fn tus_cancel(c: &Client, loc: &str) {
    if let Ok(req) = c.request(Method::DELETE, loc) {
        let _ = req
            .header("Tus-Resumable", TUS)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
    }
}

/// Whether the file is in the folder with its full length: a last PATCH whose answer was
/// lost may have finished the upload.
async fn landed(c: &Client, folder: &str, file: &FilePlan) -> bool {
    let q = format!(
        "{}?path={}",
        api_path(&["vfolders", folder, "download"]),
        segment(&file.dest)
    );
    let Ok(req) = c.request(Method::HEAD, &q) else {
        return false;
    };
    match req.timeout(Duration::from_secs(60)).send().await {
        Ok(r) if r.status().is_success() => {
            let h = r.headers();
            let len = h
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let zip = h
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/zip"));
            !zip && len == Some(file.len)
        }
        _ => false,
    }
}

/// One file to upload: from where, to which path, how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub local: PathBuf,
    pub dest: String,
    pub len: u64,
}

/// Uploads one file by tus: creates the upload, then PATCHes it `chunk` bytes at a time.
/// After a dropped connection or a server in trouble it asks the server (HEAD) how much
/// arrived and resumes from there, waiting longer each time, and gives up after
/// `retry.attempts` tries in a row without progress. `current` holds the upload's location
/// while it is unfinished.
#[allow(clippy::too_many_arguments)]
async fn send_file(
    c: &Client,
    folder: &str,
    file: &FilePlan,
    chunk: u64,
    retry: Retry,
    progress: &SharedProgress,
    before: u64,
    current: &Mutex<Option<String>>,
) -> Result<()> {
    let loc = tus_create(c, folder, &file.dest, file.len).await?;
    *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(loc.clone());
    let mut offset = 0u64;
    let mut failures = 0u32;
    'sending: while offset < file.len {
        let now_len = std::fs::metadata(&file.local).map(|m| m.len()).ok();
        if now_len != Some(file.len) {
            return Err(Error::Other(format!(
                "{} changed while it was being uploaded; upload it again.",
                file.local.display()
            )));
        }
        let n = chunk.min(file.len - offset);
        let mut err = match tus_patch(c, &loc, &file.local, offset, n, progress, before).await {
            Ok(o) if o > offset => {
                offset = o;
                failures = 0;
                continue;
            }
            Ok(o) => Error::Other(format!(
                "the server kept nothing of the data sent from byte {o}."
            )),
            Err(Failed::Fatal(e)) => return Err(e),
            Err(Failed::Transient(e)) => e,
        };
        // Ask the server where it stands, waiting longer after each failure.
        loop {
            failures += 1;
            if failures > retry.attempts {
                return Err(Error::Other(format!(
                    "Uploading {} failed {} times in a row; the last time: {err}",
                    file.dest, retry.attempts
                )));
            }
            let wait = retry.first * 2u32.pow(failures - 1);
            lock(progress).say(&format!(
                "berth: uploading {}: {err}; trying again in {} s.",
                file.dest,
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
            match tus_head(c, &loc).await {
                Ok(o) => {
                    if o > offset {
                        failures = 0;
                    }
                    offset = o;
                    break;
                }
                Err(Failed::Transient(e)) => err = e,
                // The upload is gone. The PATCH's own refusal says why, if it had one;
                // else the last bytes may have arrived and only the answer was lost.
                Err(Failed::Fatal(e)) => {
                    if let Error::Problem { .. } = err {
                        return Err(err);
                    }
                    if offset + n >= file.len && landed(c, folder, file).await {
                        break 'sending;
                    }
                    return Err(e);
                }
            }
        }
    }
    *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(())
}

/// The files (and empty directories) under local directory `root`, as paths under `dest`,
/// sorted. Symbolic links to files are followed; links to directories are skipped (with a
/// note) so that loops cannot happen.
pub fn walk(root: &Path, dest: &str) -> Result<(Vec<FilePlan>, Vec<String>)> {
    fn visit(
        dir: &Path,
        dest: &str,
        files: &mut Vec<FilePlan>,
        empty: &mut Vec<String>,
    ) -> Result<()> {
        let cannot =
            |e: std::io::Error| Error::Other(format!("cannot read {}: {e}", dir.display()));
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
            .map_err(cannot)?
            .collect::<std::io::Result<_>>()
            .map_err(cannot)?;
        entries.sort_by_key(|e| e.file_name());
        let before = files.len() + empty.len();
        let mut subdirs = 0;
        for e in entries {
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                return Err(Error::Usage(format!(
                    "Cannot upload {}: its name is not UTF-8 text.",
                    path.display()
                )));
            };
            let to = format!("{dest}/{name}");
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| Error::Other(format!("cannot read {}: {e}", path.display())))?;
            let (is_link, meta) = if meta.file_type().is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(m) => (true, m),
                    Err(_) => {
                        eprintln!(
                            "berth: skipping {}: a symbolic link that points nowhere.",
                            path.display()
                        );
                        continue;
                    }
                }
            } else {
                (false, meta)
            };
            if meta.is_dir() {
                if is_link {
                    eprintln!(
                        "berth: skipping {}: a symbolic link to a directory.",
                        path.display()
                    );
                    continue;
                }
                subdirs += 1;
                visit(&path, &to, files, empty)?;
            } else if meta.is_file() {
                let to = vf::normalize_entry_path(&to)
                    .map_err(|m| Error::Usage(format!("Cannot upload {}: {m}", path.display())))?;
                files.push(FilePlan {
                    local: path,
                    dest: to,
                    len: meta.len(),
                });
            } else {
                eprintln!("berth: skipping {}: not a regular file.", path.display());
            }
        }
        if subdirs == 0 && files.len() + empty.len() == before {
            empty.push(dest.to_string());
        }
        Ok(())
    }
    let mut files = Vec::new();
    let mut empty = Vec::new();
    visit(root, dest, &mut files, &mut empty)?;
    Ok((files, empty))
}

/// The name a local path goes by (`.` and `..` by their real names).
fn local_name(p: &Path) -> Result<String> {
    let real = match p.file_name() {
        Some(_) if !p.ends_with("..") => p.to_path_buf(),
        _ => std::fs::canonicalize(p)
            .map_err(|e| Error::Other(format!("cannot read {}: {e}", p.display())))?,
    };
    let name = real.file_name().ok_or_else(|| {
        Error::Usage(format!(
            "{} has no name to upload it under; give REMOTE_PATH.",
            p.display()
        ))
    })?;
    name.to_str().map(str::to_string).ok_or_else(|| {
        Error::Usage(format!(
            "Cannot upload {}: its name is not UTF-8 text; give REMOTE_PATH.",
            p.display()
        ))
    })
}

/// Whether `path` is a directory in the folder.
async fn is_dir(c: &Client, folder: &str, path: &str) -> Result<bool> {
    let q = format!(
        "{}?path={}&limit=1",
        api_path(&["vfolders", folder, "files"]),
        segment(path)
    );
    match c.get(&q).await {
        Ok(_) => Ok(true),
        Err(Error::Problem { problem, .. }) if matches!(problem.status, 400 | 404) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn upload(c: &Client, a: UploadArgs) -> Result<()> {
    let t = split_target(&a.folder, a.remote.as_deref())?;
    let meta = std::fs::metadata(&a.local)
        .map_err(|e| Error::Other(format!("cannot read {}: {e}", a.local.display())))?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(Error::Usage(format!(
            "{} is neither a file nor a directory.",
            a.local.display()
        )));
    }
    let name = local_name(&a.local)?;
    let f = resolve(c, &t.folder).await?;
    // Like cp: into an existing directory, else under the given name.
    let dest = if t.path.is_empty() {
        name
    } else if t.dir || is_dir(c, &f.id, &t.path).await? {
        format!("{}/{name}", t.path)
    } else {
        t.path.clone()
    };
    let dest = vf::normalize_entry_path(&dest).map_err(Error::Usage)?;
    let (files, empty) = if meta.is_dir() {
        walk(&a.local, &dest)?
    } else {
        (
            vec![FilePlan {
                local: a.local.clone(),
                dest: dest.clone(),
                len: meta.len(),
            }],
            Vec::new(),
        )
    };
    let total: u64 = files.iter().map(|p| p.len).sum();
    let progress = Progress::new(shown(&f, &dest), Some(total)).shared();
    let current = Mutex::new(None);
    let work = async {
        let mut before = 0u64;
        for file in &files {
            lock(&progress).label = shown(&f, &file.dest);
            send_file(
                c,
                &f.id,
                file,
                a.chunk_size,
                RETRY,
                &progress,
                before,
                &current,
            )
            .await
            .map_err(|e| match e {
                Error::Other(m) if files.len() > 1 => {
                    Error::Other(format!("{}: {m}", file.local.display()))
                }
                e => e,
            })?;
            before += file.len;
            lock(&progress).show(before, true);
        }
        for dir in &empty {
            match c
                .post(
                    &api_path(&["vfolders", &f.id, "mkdir"]),
                    &json!({ "path": dir }),
                )
                .await
            {
                Ok(_) => {}
                // It is there already.
                Err(Error::Problem { problem, .. }) if problem.status == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<(), Error>(())
    };
    let outcome = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Other(
            "Interrupted; the unfinished file's upload was removed (files sent before it stay).".into(),
        )),
    };
    lock(&progress).done();
    if let Err(e) = outcome {
        let loc = current.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(loc) = loc {
            tus_cancel(c, &loc).await;
        }
        return Err(e);
    }
    if meta.is_dir() {
        println!(
            "Uploaded {} file{} ({}) from {} to {}.",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            api::Bytes(total).human(),
            a.local.display(),
            shown(&f, &dest)
        );
    } else {
        println!(
            "Uploaded {} to {} ({}).",
            a.local.display(),
            shown(&f, &dest),
            api::Bytes(total).human()
        );
    }
    Ok(())
}

// ---- Downloads ----

/// `OUT.part` next to `OUT`.
fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

/// Copies the body to `w`, never waiting more than [`READ_IDLE`] for a byte; returns the
/// bytes written.
async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    c: &Client,
    resp: reqwest::Response,
    w: &mut W,
    progress: &SharedProgress,
) -> Result<u64> {
    let mut stream = resp.bytes_stream();
    let mut n = 0u64;
    loop {
        let next = tokio::time::timeout(READ_IDLE, stream.next())
            .await
            .map_err(|_| {
                Error::Other(format!(
                    "the download stalled: nothing arrived from {} for {} s.",
                    c.base(),
                    READ_IDLE.as_secs()
                ))
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            Error::Other(format!(
                "the download broke off after {n} bytes: {}",
                causes(&e)
            ))
        })?;
        w.write_all(&chunk)
            .await
            .map_err(|e| Error::Other(format!("cannot write the download: {e}")))?;
        n += chunk.len() as u64;
        lock(progress).show(n, false);
    }
    w.flush()
        .await
        .map_err(|e| Error::Other(format!("cannot write the download: {e}")))?;
    Ok(n)
}

async fn download(c: &Client, target: &str, output: Option<PathBuf>, force: bool) -> Result<()> {
    let t = split_target(target, None)?;
    let f = resolve(c, &t.folder).await?;
    let q = format!(
        "{}?path={}",
        api_path(&["vfolders", &f.id, "download"]),
        segment(&t.path)
    );
    let resp = tokio::time::timeout(READ_IDLE, c.request(Method::GET, &q)?.send())
        .await
        .map_err(|_| {
            Error::Other(format!(
                "{} did not answer within {} s.",
                c.base(),
                READ_IDLE.as_secs()
            ))
        })?
        .map_err(|e| c.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(c.refused(resp).await);
    }
    let zip = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/zip"));
    let base = if t.path.is_empty() {
        f.name.clone()
    } else {
        t.path.rsplit('/').next().unwrap_or(&t.path).to_string()
    };
    let name = if zip { format!("{base}.zip") } else { base };
    let expected = resp.content_length().filter(|_| !zip);
    let progress = Progress::new(name.clone(), expected).shared();

    if output.as_deref() == Some(Path::new("-")) {
        let mut out = tokio::io::stdout();
        let n = copy_body(c, resp, &mut out, &progress).await;
        lock(&progress).done();
        let n = n?;
        return check_length(n, expected);
    }
    let out = match output {
        None => PathBuf::from(&name),
        Some(o) if o.is_dir() => o.join(&name),
        Some(o) => o,
    };
    if !force && std::fs::symlink_metadata(&out).is_ok() {
        return Err(Error::Other(format!(
            "{} already exists; pass --force to replace it, or -o to save elsewhere.",
            out.display()
        )));
    }
    let part = part_path(&out);
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", part.display())))?;
    let copied = copy_body(c, resp, &mut file, &progress).await;
    lock(&progress).done();
    let finished = match copied.and_then(|n| check_length(n, expected).map(|_| n)) {
        Ok(n) => file
            .sync_all()
            .await
            .map_err(|e| Error::Other(format!("cannot write {}: {e}", part.display())))
            .map(|_| n),
        Err(e) => Err(e),
    };
    drop(file);
    let n = match finished {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, &out).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        Error::Other(format!("cannot write {}: {e}", out.display()))
    })?;
    println!(
        "Saved {}{} to {} ({}).",
        shown(&f, &t.path),
        if zip { " as a zip" } else { "" },
        out.display(),
        api::Bytes(n).human()
    );
    Ok(())
}

fn check_length(n: u64, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(e) if e != n => Err(Error::Other(format!(
            "the download broke off: {n} of {e} bytes arrived."
        ))),
        _ => Ok(()),
    }
}

// ---- Sharing ----

async fn invite(c: &Client, arg: &str, user: &str, perm: &str, json: bool) -> Result<()> {
    let perm = Permission::parse_grant(perm).map_err(Error::Usage)?;
    if user.trim().is_empty() {
        return Err(Error::Usage(
            "Name the user to invite by username or id.".into(),
        ));
    }
    let f = resolve(c, arg).await?;
    let answer = c
        .post(
            &api_path(&["vfolders", &f.id, "invitations"]),
            &json!({ "user": user.trim(), "permission": perm.as_str().to_ascii_lowercase() }),
        )
        .await?;
    let inv: Invitation = answer.json()?;
    if json {
        println!("{}", answer.pretty()?);
    } else {
        println!(
            "Invited {} to folder {} ({}); it is shared once they accept.",
            inv.invitee,
            f.name,
            inv.permission.describe()
        );
    }
    Ok(())
}

async fn inbox(c: &Client) -> Result<(Answer, Vec<Invitation>)> {
    let answer = c.get(&api_path(&["invitations"])).await?;
    let list = answer.json()?;
    Ok((answer, list))
}

/// The invitation `arg` names: its id, the folder's name, or the start of its id.
pub fn pick_invitation<'a>(list: &'a [Invitation], arg: &str) -> Result<&'a Invitation> {
    if let Some(i) = list.iter().find(|i| i.id == arg) {
        return Ok(i);
    }
    let named: Vec<&Invitation> = list.iter().filter(|i| i.vfolder_name == arg).collect();
    match named[..] {
        [one] => return Ok(one),
        [] => {}
        _ => {
            let which: Vec<String> = named
                .iter()
                .map(|i| format!("{} (from {})", i.id, i.inviter))
                .collect();
            return Err(Error::Other(format!(
                "{} invitations are to folders named \"{arg}\": {}; give the invitation's id.",
                named.len(),
                which.join(", ")
            )));
        }
    }
    if let Some(i) = by_id_prefix(
        list,
        arg,
        |i| &i.id,
        |n| format!("\"{arg}\" is the start of {n} invitation ids; give more of the id."),
    )? {
        return Ok(i);
    }
    Err(Error::Other(if list.is_empty() {
        "You have no invitations waiting.".to_string()
    } else {
        format!(
            "You have no invitation to a folder named \"{}\"; `berth vfolder invitations` lists yours.",
            arg.escape_default()
        )
    }))
}

/// The table `vfolder invitations` prints.
pub fn invitations_table(list: &[Invitation]) -> Table {
    let mut t = Table::new(&["ID", "FOLDER", "FROM", "PERMISSION", "AGE"]);
    for i in list {
        t.row(vec![
            i.id.chars().take(8).collect(),
            i.vfolder_name.clone(),
            i.inviter.clone(),
            i.permission.as_str().to_string(),
            table::age(&i.created_at),
        ]);
    }
    t
}

async fn invitations(c: &Client, json: bool) -> Result<()> {
    let (answer, list) = inbox(c).await?;
    if json {
        println!("{}", answer.pretty()?);
    } else if list.is_empty() {
        eprintln!("No invitations wait for you.");
    } else {
        print!("{}", invitations_table(&list).render());
    }
    Ok(())
}

async fn accept(c: &Client, arg: &str, json: bool) -> Result<()> {
    let (_, list) = inbox(c).await?;
    let inv = pick_invitation(&list, arg)?;
    let answer = c
        .post(&api_path(&["invitations", &inv.id, "accept"]), &json!({}))
        .await?;
    if json {
        println!("{}", answer.pretty()?);
    } else {
        let f: VFolder = answer.json()?;
        println!(
            "Folder {} from {} is now shared with you ({}).",
            f.name,
            inv.inviter,
            f.permission.describe()
        );
    }
    Ok(())
}

async fn decline(c: &Client, arg: &str) -> Result<()> {
    let (_, list) = inbox(c).await?;
    let inv = pick_invitation(&list, arg)?;
    c.post(&api_path(&["invitations", &inv.id, "decline"]), &json!({}))
        .await?;
    println!(
        "Declined the invitation to folder {} from {}.",
        inv.vfolder_name, inv.inviter
    );
    Ok(())
}

async fn members(c: &Client, arg: &str, json: bool) -> Result<()> {
    let f = resolve(c, arg).await?;
    let answer = c.get(&api_path(&["vfolders", &f.id, "members"])).await?;
    let list: Vec<Member> = answer.json()?;
    if json {
        println!("{}", answer.pretty()?);
    } else if list.is_empty() {
        eprintln!("Folder {} is not shared with anyone.", f.name);
    } else {
        let mut t = Table::new(&["USER", "PERMISSION"]);
        for m in &list {
            t.row(vec![m.username.clone(), m.permission.as_str().to_string()]);
        }
        print!("{}", t.render());
    }
    Ok(())
}

async fn unshare(c: &Client, arg: &str, user: &str) -> Result<()> {
    let f = resolve(c, arg).await?;
    c.delete(&api_path(&["vfolders", &f.id, "members", user.trim()]))
        .await?;
    println!(
        "Folder {} is no longer shared with {}.",
        f.name,
        user.trim()
    );
    Ok(())
}

async fn leave(c: &Client, arg: &str) -> Result<()> {
    let f = resolve(c, arg).await?;
    c.post(&api_path(&["vfolders", &f.id, "leave"]), &json!({}))
        .await?;
    println!("You left folder {} of {}.", f.name, f.owner);
    Ok(())
}

// ---- Clones ----

/// The progress of a job in percent (100 when there is nothing to copy).
pub fn percent(job: &Job) -> u64 {
    (job.done_bytes.min(job.total_bytes) * 100)
        .checked_div(job.total_bytes)
        .unwrap_or(if job.state == "RUNNING" { 0 } else { 100 })
}

async fn clone(c: &Client, arg: &str, name: &str, no_wait: bool, json: bool) -> Result<()> {
    vf::validate_name(name).map_err(Error::Usage)?;
    let f = resolve(c, arg).await?;
    let mut answer = c
        .post(
            &api_path(&["vfolders", &f.id, "clone"]),
            &json!({ "name": name }),
        )
        .await?;
    let mut job: Job = answer.json()?;
    if no_wait {
        if json {
            println!("{}", answer.pretty()?);
        } else {
            println!(
                "Cloning folder {} into {name}: job {} (`berth vfolder list` shows it as cloning until it is done).",
                f.name, job.id
            );
        }
        return Ok(());
    }
    let mut progress = Progress::new(format!("Cloning {} into {name}", f.name), None);
    let path = api_path(&["jobs", &job.id]);
    while job.state == "RUNNING" {
        if progress.on {
            progress.last = None;
            let pct = percent(&job);
            eprint!(
                "\r\x1b[K{}: {pct:>3}% ({} of {})",
                progress.label,
                api::Bytes(job.done_bytes).human(),
                api::Bytes(job.total_bytes).human()
            );
            let _ = std::io::stderr().flush();
            progress.last = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        answer = c.get(&path).await?;
        job = answer.json()?;
    }
    progress.done();
    if json {
        println!("{}", answer.pretty()?);
    }
    if job.state == "DONE" {
        if !json {
            println!(
                "Cloned folder {} into {name} ({}).",
                f.name,
                api::Bytes(job.total_bytes).human()
            );
        }
        Ok(())
    } else {
        let why = job
            .error
            .as_deref()
            .map(|e| e.trim().trim_end_matches('.').to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("the job ended {}", job.state));
        Err(Error::Other(format!(
            "Cloning folder {} into {name} failed: {why}.",
            f.name
        )))
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

    fn folder(id: &str, name: &str, kind: &str, owner: &str, perm: Permission) -> VFolder {
        VFolder {
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

    #[test]
    fn names_prefer_mine_then_shared_then_project() {
        let list = vec![
            folder("aaaa0001", "data", "project", "vision", Permission::Wd),
            folder("bbbb0002", "data", "user", "alice", Permission::Ro),
            folder("cccc0003", "data", "user", "me", Permission::Owner),
            folder("dddd0004", "shared", "user", "alice", Permission::Rw),
            folder("dddd0005", "shared", "user", "bob", Permission::Ro),
            folder("eeee0006", "proj", "project", "vision", Permission::Wd),
        ];
        assert_eq!(pick(&list, "data", false).unwrap().id, "cccc0003");
        assert_eq!(pick(&list[..2], "data", false).unwrap().id, "bbbb0002");
        assert_eq!(pick(&list[..1], "data", false).unwrap().id, "aaaa0001");
        assert_eq!(pick(&list, "proj", false).unwrap().id, "eeee0006");
        assert_eq!(pick(&list, "bbbb0002", false).unwrap().id, "bbbb0002");
        assert_eq!(pick(&list, "EEEE", false).unwrap().id, "eeee0006");
        let e = pick(&list, "shared", false).unwrap_err().to_string();
        assert!(
            e.starts_with("2 folders shared with you are named \"shared\": dddd0004 (owner alice), dddd0005 (owner bob)"),
            "{e}"
        );
        assert!(pick(&list, "dddd", false)
            .unwrap_err()
            .to_string()
            .contains("start of 2 folder ids"));
        assert_eq!(
            pick(&list, "nope", false).unwrap_err().to_string(),
            "There is no folder named \"nope\"; `berth vfolder list` shows the folders you can use."
        );
        assert!(pick(&list, "nope", true)
            .unwrap_err()
            .to_string()
            .contains("in your trash"));
    }

    #[test]
    fn targets_split_into_folder_and_checked_path() {
        let t = split_target("data/a//b/", None).unwrap();
        assert_eq!(
            t,
            Target {
                folder: "data".into(),
                path: "a/b".into(),
                dir: true
            }
        );
        let t = split_target("data", Some("x.csv")).unwrap();
        assert_eq!((t.path.as_str(), t.dir), ("x.csv", false));
        let t = split_target("data/", Some("x")).unwrap();
        assert_eq!(t.path, "x");
        assert!(split_target("data", None).unwrap().dir);
        let e = split_target("data/../etc", None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("\"..\" is not allowed"), "{e}");
        assert_eq!(
            split_target("data/a", Some("b")).unwrap_err().exit_code(),
            2
        );
        assert_eq!(split_target("/etc", None).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn tables_are_readable() {
        let mut f = folder("0123456789ab", "data", "user", "me", Permission::Owner);
        let out = folders_table(std::slice::from_ref(&f), false).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "NAME  TYPE  OWNER  PERMISSION  USAGE          ID");
        assert_eq!(
            lines[1],
            "data  user  me     OWNER       3 MiB / 1 GiB  01234567"
        );
        f.quota_bytes = None;
        f.state = "CLONING".into();
        assert_eq!(usage(&f), "3 MiB / unlimited (cloning)");
        let list = FileList {
            path: String::new(),
            entries: vec![
                vf::FileEntry {
                    name: "sub".into(),
                    path: "sub".into(),
                    kind: "dir".into(),
                    size: 4096,
                    modified: "2025-01-01T00:00:00Z".into(),
                },
                vf::FileEntry {
                    name: "a.bin".into(),
                    path: "a.bin".into(),
                    kind: "file".into(),
                    size: 1536,
                    modified: "2025-01-02T00:00:00Z".into(),
                },
            ],
            total: 2,
            offset: 0,
        };
        let out = files_table(&list).render();
        assert_eq!(
            out,
            "NAME   KIND  SIZE     MODIFIED\nsub    dir   -        2025-01-01T00:00:00Z\na.bin  file  1.5 KiB  2025-01-02T00:00:00Z\n"
        );
    }

    #[test]
    fn invitations_by_id_folder_name_or_id_start() {
        let inv = |id: &str, name: &str, from: &str| Invitation {
            id: id.into(),
            vfolder: "f".into(),
            vfolder_name: name.into(),
            inviter: from.into(),
            invitee: "me".into(),
            permission: Permission::Rw,
            state: "PENDING".into(),
            created_at: "2025-01-01T00:00:00Z".into(),
        };
        let list = vec![
            inv("1111aaaa", "data", "alice"),
            inv("2222bbbb", "data", "bob"),
            inv("3333cccc", "models", "bob"),
        ];
        assert_eq!(pick_invitation(&list, "models").unwrap().id, "3333cccc");
        assert_eq!(pick_invitation(&list, "2222").unwrap().id, "2222bbbb");
        assert_eq!(pick_invitation(&list, "1111aaaa").unwrap().id, "1111aaaa");
        assert!(pick_invitation(&list, "data")
            .unwrap_err()
            .to_string()
            .contains("2 invitations are to folders named \"data\""));
        assert_eq!(
            pick_invitation(&[], "x").unwrap_err().to_string(),
            "You have no invitations waiting."
        );
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

    #[test]
    fn base64_and_percent() {
        let mut j = Job {
            id: "j".into(),
            kind: "clone".into(),
            state: "RUNNING".into(),
            done_bytes: 50,
            total_bytes: 200,
            vfolder: None,
            error: None,
            created_at: String::new(),
            finished_at: None,
        };
        assert_eq!(percent(&j), 25);
        j.total_bytes = 0;
        assert_eq!(percent(&j), 0);
        j.state = "DONE".into();
        assert_eq!(percent(&j), 100);
    }

    #[test]
    fn directories_are_walked_in_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b/c")).unwrap();
        std::fs::create_dir_all(d.path().join("empty")).unwrap();
        std::fs::write(d.path().join("a.txt"), "a").unwrap();
        std::fs::write(d.path().join("b/c/x.bin"), "xyz").unwrap();
        std::os::unix::fs::symlink(d.path().join("b"), d.path().join("loop")).unwrap();
        std::os::unix::fs::symlink(d.path().join("a.txt"), d.path().join("link.txt")).unwrap();
        let (files, empty) = walk(d.path(), "up").unwrap();
        let got: Vec<(&str, u64)> = files.iter().map(|f| (f.dest.as_str(), f.len)).collect();
        assert_eq!(
            got,
            [("up/a.txt", 1), ("up/b/c/x.bin", 3), ("up/link.txt", 1)]
        );
        assert_eq!(empty, ["up/empty"]);
        assert_eq!(part_path(Path::new("x/y.zip")), Path::new("x/y.zip.part"));
    }

    /// A tus server that drops the first PATCH part-way (keeping what arrived) and answers
    /// 503, as a gateway restarting would: the client asks where to resume and finishes.
    #[tokio::test]
    async fn uploads_resume_where_the_server_stopped() {
        use axum::body::Body;
        use axum::extract::State;
        use axum::http::{HeaderMap as AxHeaders, StatusCode};
        use axum::response::IntoResponse;
        use axum::routing::{head, post};

        #[derive(Default)]
        struct Tus {
            data: Vec<u8>,
            length: u64,
            patches: u32,
            heads: u32,
            path: String,
        }
        type S = Arc<Mutex<Tus>>;

        async fn create(State(s): State<S>, h: AxHeaders) -> impl IntoResponse {
            let mut t = s.lock().unwrap();
            t.length = h["upload-length"].to_str().unwrap().parse().unwrap();
            t.path = h["upload-metadata"].to_str().unwrap().to_string();
            (
                StatusCode::CREATED,
                [("location", "/api/v1/vfolders/f/uploads/u")],
            )
        }
        async fn offset(State(s): State<S>) -> impl IntoResponse {
            let mut t = s.lock().unwrap();
            t.heads += 1;
            (
                StatusCode::OK,
                [("upload-offset", t.data.len().to_string())],
            )
        }
        async fn patch(State(s): State<S>, h: AxHeaders, body: Body) -> axum::response::Response {
            let claimed: usize = h["upload-offset"].to_str().unwrap().parse().unwrap();
            let first = {
                let mut t = s.lock().unwrap();
                t.patches += 1;
                if claimed != t.data.len() {
                    return StatusCode::CONFLICT.into_response();
                }
                t.patches == 1
            };
            let mut stream = body.into_data_stream();
            let mut got = 0;
            while let Some(Ok(chunk)) = stream.next().await {
                got += chunk.len();
                s.lock().unwrap().data.extend_from_slice(&chunk);
                if first && got >= 100_000 {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("content-type", "application/problem+json")],
                        r#"{"type":"/problems/x","title":"x","status":503,"detail":"Restarting."}"#,
                    )
                        .into_response();
                }
            }
            let n = s.lock().unwrap().data.len().to_string();
            (StatusCode::NO_CONTENT, [("upload-offset", n)]).into_response()
        }

        let state: S = Arc::default();
        let app = axum::Router::new()
            .route("/api/v1/vfolders/f/uploads", post(create))
            .route("/api/v1/vfolders/f/uploads/u", head(offset).patch(patch))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("big.bin");
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&local, &bytes).unwrap();
        let c = Client::new(
            &format!("http://{addr}"),
            super::super::client::Auth::Key("k".into()),
        )
        .unwrap();
        let plan = FilePlan {
            local,
            dest: "d/big.bin".into(),
            len: bytes.len() as u64,
        };
        let progress = Progress::new("x".into(), None).shared();
        let current = Mutex::new(None);
        let retry = Retry {
            attempts: 3,
            first: Duration::from_millis(10),
        };
        send_file(&c, "f", &plan, 300_000, retry, &progress, 0, &current)
            .await
            .unwrap();
        let t = state.lock().unwrap();
        assert_eq!(t.data, bytes, "the server has the whole file");
        assert_eq!(t.heads, 1, "one HEAD after the broken PATCH");
        assert!(t.patches >= 3, "a broken chunk and two more: {}", t.patches);
        assert_eq!(
            t.path,
            api::vfolders::upload_metadata("d/big.bin", Some("big.bin"))
        );
        assert!(current.lock().unwrap().is_none());
    }
}
