//! The storage backend: folders as directories on the gateway host's disk, named by id
//! (`DATA_DIR/vfolders/ID`), and unfinished uploads beside them (`DATA_DIR/uploads/ID`).
//! Everything here is blocking file-system work; callers run it on the blocking pool.
//!
//! Sessions change their folders while the gateway works on them, and code in a session is
//! hostile: it can swap any directory for a symlink at any moment. So nothing here uses a path
//! from the host's root. A [`Folder`] is an open handle on the folder's directory, and every
//! operation resolves its path *relative to that handle* with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` (or, where the kernel lacks it, one `openat(O_NOFOLLOW)` per
//! component): a symlink anywhere in a path is refused at the moment of use, never followed,
//! so there is no check-then-open window. Entries are then used through handles too (`fstat`
//! on the opened file, `*at` calls on the opened parent directory).
//!
//! Only regular files and directories are read or copied; FIFOs, sockets and devices are never
//! opened for reading (files are opened `O_NONBLOCK` and checked with `fstat` before a byte is
//! read). Reads stop at the size seen when the file was opened. Moves never replace an entry
//! (`RENAME_NOREPLACE`); uploads are placed with `linkat`, which fails when the name is taken.
//! Writes run with uid 1000's rights where the process can switch ([`WorkRights`]), so even a
//! mistake here could not write where `work` cannot.

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The uid and gid of `work` inside session containers.
pub const WORK_UID: u32 = 1000;

/// How deep a walk (zip, clone, usage, delete) goes; each level holds one open directory.
pub const MAX_DEPTH: usize = 256;

/// The permission bits berth ever sets on what it creates: never set-uid, set-gid or sticky.
const PERM_BITS: u32 = 0o777;

/// The directory below the storage directory that holds one directory per folder id.
pub const FOLDERS_DIR: &str = "vfolders";

#[derive(Debug)]
pub struct Storage {
    /// Each folder's bytes, remembered between requests.
    pub usage: super::usage::UsageCache,
    folders: PathBuf,
    uploads: PathBuf,
    folders_fd: OwnedFd,
    uploads_fd: OwnedFd,
}

/// Why a path cannot be used, as a sentence.
#[derive(Debug)]
pub enum FsError {
    /// The client's fault (400).
    Bad(String),
    /// Nothing there (404).
    Missing(String),
    /// Something already there (409).
    Exists(String),
    Io(io::Error),
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> Self {
        Self::Io(e.into())
    }
}

pub type FsResult<T> = Result<T, FsError>;

/// A directory opened for listing and `*at` calls.
fn open_dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Storage {
    /// Creates the directories under `data_dir` (made absolute: Docker bind-mounts need it).
    /// Uploads live beside the folders, on the same filesystem, since they are placed into
    /// folders with `linkat`.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let data_dir = std::fs::canonicalize(data_dir)?;
        let folders = data_dir.join(FOLDERS_DIR);
        let uploads = data_dir.join("uploads");
        std::fs::create_dir_all(&folders)?;
        std::fs::create_dir_all(&uploads)?;
        let open = |p: &Path| rustix::fs::open(p, open_dir_flags(), Mode::empty());
        let uploads_fd = open(&uploads)?;
        // Uploads are placed with `linkat` as `work`, which needs to search this directory
        // (upload file names are random UUIDs, so searching reveals nothing).
        if let Ok(st) = rustix::fs::fstat(&uploads_fd) {
            let _ = rustix::fs::fchmod(
                &uploads_fd,
                Mode::from_raw_mode(stat_mode(&st) & PERM_BITS | 0o711),
            );
        }
        let folders_fd = open(&folders)?;
        // Some sandboxes refuse openat2 with EPERM rather than ENOSYS: then walk components.
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        if rustix::fs::openat2(&folders_fd, ".", open_dir_flags(), Mode::empty(), how).is_err() {
            NO_OPENAT2.store(true, Ordering::Relaxed);
        }
        raise_fd_limit();
        Ok(Self {
            usage: Default::default(),
            folders_fd,
            uploads_fd,
            folders,
            uploads,
        })
    }

    /// The host directory of a folder (for bind mounts; never used to reach files).
    /// The directory holding one directory per folder id, as the gateway sees it.
    pub fn folders_dir(&self) -> &Path {
        &self.folders
    }

    pub fn folder_dir(&self, id: &str) -> PathBuf {
        self.folders.join(id)
    }

    pub fn upload_file(&self, id: &str) -> PathBuf {
        self.uploads.join(id)
    }

    pub fn uploads_dir(&self) -> &Path {
        &self.uploads
    }

    /// Creates an empty upload file, owned by `work` so the upload can be linked into a folder
    /// with `work`'s rights.
    pub fn create_upload_file(&self, id: &str) -> io::Result<std::fs::File> {
        let fd = rustix::fs::openat(
            &self.uploads_fd,
            id,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        give_fd_to_work(&fd);
        Ok(fd.into())
    }

    /// Creates a folder's directory, owned by `work`.
    pub fn create_folder(&self, id: &str) -> io::Result<()> {
        rustix::fs::mkdirat(&self.folders_fd, id, Mode::from_raw_mode(0o755))?;
        let fd = rustix::fs::openat(&self.folders_fd, id, open_dir_flags(), Mode::empty())?;
        give_fd_to_work(&fd);
        Ok(())
    }

    /// Removes a folder's directory and everything in it. (Sessions see only the inside of a
    /// folder, never `DATA_DIR/vfolders`, and std's `remove_dir_all` does not follow links.)
    pub fn purge_folder(&self, id: &str) -> io::Result<()> {
        let dir = self.folder_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            // std recurses with a descriptor per level; a tree deeper than the descriptor limit
            // (a session can make one) goes with rm, which walks any depth without following
            // links or leaving the file system.
            Err(e) => {
                let st = std::process::Command::new("rm")
                    .args(["-rf", "--one-file-system", "--"])
                    .arg(&dir)
                    .status()?;
                if st.success() && !dir.exists() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Ok(()) => Ok(()),
        }
    }

    /// An open handle on folder `id`'s directory: every file operation goes through one.
    pub fn folder(&self, id: &str) -> FsResult<Folder> {
        match rustix::fs::openat(&self.folders_fd, id, open_dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(Folder { root: fd }),
            Err(Errno::NOENT) => Err(FsError::Missing(
                "The folder's directory is missing.".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Places the complete upload `upload_id` at `rel` in `folder` (parents made as needed),
    /// never over an existing entry, then removes the upload file.
    pub fn place_upload(&self, folder: &Folder, upload_id: &str, rel: &str) -> FsResult<()> {
        let (parent, name) = split(rel);
        let r = WorkRights::run(|| {
            let dir = folder.mkdir_all(parent)?;
            match rustix::fs::linkat(&self.uploads_fd, upload_id, &dir, name, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(Errno::EXIST) => Err(FsError::Exists(format!(
                    "A file appeared at \"{rel}\" while uploading; uploads never overwrite, so this one was dropped."
                ))),
                Err(e) => Err(e.into()),
            }
        });
        let _ = rustix::fs::unlinkat(&self.uploads_fd, upload_id, AtFlags::empty());
        r
    }
}

/// Walks hold one descriptor per directory level (zips, clones and usage run side by side):
/// the soft limit on open files goes up to the hard one.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: l.maximum,
                maximum: l.maximum,
            },
        );
    }
}

/// `rel`'s parent and final name (`""` is the folder itself).
fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Set once the kernel has said it has no `openat2`.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `rel` (normalised: no `..`, `.`, empty or absolute components) beneath `dir`, refusing
/// any symlink on the way and at the end.
fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: impl AsRef<OsStr>,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let rel = rel.as_ref();
    let rel = if rel.is_empty() { OsStr::new(".") } else { rel };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(dir, rel, flags, mode, how) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // A rename elsewhere on the file system raced the lookup; one more try is enough.
            Err(Errno::AGAIN) => return rustix::fs::openat2(dir, rel, flags, mode, how),
            r => return r,
        }
    }
    // One component at a time, each opened (`O_PATH`: search permission is enough) without
    // following a symlink.
    let mut parts = rel.as_bytes().split(|b| *b == b'/').peekable();
    let mut cur: Option<OwnedFd> = None;
    while let Some(part) = parts.next() {
        let part = OsStr::from_bytes(part);
        if part == ".." {
            return Err(Errno::XDEV);
        }
        let at = cur.as_ref().map_or(dir, |f| f.as_fd());
        if parts.peek().is_none() {
            return rustix::fs::openat(at, part, flags, mode);
        }
        let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        cur = Some(match rustix::fs::openat(at, part, step, Mode::empty()) {
            Ok(fd) => fd,
            // A link met on the way says ENOTDIR here; say it is a link, as openat2 does.
            Err(Errno::NOTDIR) if is_link(at, part) => return Err(Errno::LOOP),
            Err(e) => return Err(e),
        });
    }
    Err(Errno::NOENT)
}

fn is_link(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| kind_of(stat_mode(&st)) == "symlink")
}

/// An error met resolving `rel`, as the API says it.
fn path_error(e: Errno, rel: &str) -> FsError {
    match e {
        Errno::LOOP => FsError::Bad(format!(
            "\"{rel}\" goes through a symbolic link; berth never follows links inside folders."
        )),
        Errno::XDEV => FsError::Bad(format!("\"{rel}\" leads outside the folder.")),
        Errno::NOENT => FsError::Missing(format!("There is nothing at \"{rel}\" in the folder.")),
        Errno::NOTDIR => FsError::Bad(format!(
            "\"{rel}\" goes through a file as if it were a directory."
        )),
        Errno::EXIST => FsError::Exists(format!("Something is already at \"{rel}\".")),
        Errno::NAMETOOLONG => FsError::Bad(format!("\"{rel}\" is too long.")),
        Errno::ACCESS | Errno::PERM => denied(rel),
        // A lease taken by a program in the session (the open is O_NONBLOCK).
        Errno::AGAIN => FsError::Exists(format!(
            "\"{rel}\" is held by a program in a session; try again when it lets go."
        )),
        Errno::NOSPC | Errno::DQUOT => FsError::Exists(
            "The disk that holds the folders is full; free some space first.".into(),
        ),
        e => FsError::Io(e.into()),
    }
}

/// Folder writes carry `work`'s rights: what `work` may not change, berth does not either.
fn denied(rel: &str) -> FsError {
    FsError::Bad(format!(
        "\"{rel}\" cannot be changed: it is not writable by the folder's user (uid {WORK_UID})."
    ))
}

/// `r`, with a permission error from deep inside an operation on `rel` said as a sentence.
fn said<T>(r: FsResult<T>, rel: &str) -> FsResult<T> {
    match r {
        Err(FsError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => Err(denied(rel)),
        r => r,
    }
}

/// One entry as listed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: &'static str,
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
}

/// `st_mode`, `st_size` and `st_mtime` have other integer types on other architectures.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
fn stat_fields(st: &rustix::fs::Stat) -> (u32, u64, i64) {
    (
        u32::from(st.st_mode),
        u64::try_from(st.st_size).unwrap_or(0),
        i64::try_from(st.st_mtime).unwrap_or(0),
    )
}

fn stat_mode(st: &rustix::fs::Stat) -> u32 {
    stat_fields(st).0
}

impl Entry {
    fn from_stat(name: String, st: &rustix::fs::Stat) -> Self {
        let (mode, size, mtime) = stat_fields(st);
        let kind = kind_of(mode);
        Self {
            name,
            kind,
            size: if kind == "file" { size } else { 0 },
            mtime,
            mode,
        }
    }
}

/// What a `st_mode` is, as the API names it.
fn kind_of(mode: u32) -> &'static str {
    match rustix::fs::FileType::from_raw_mode(mode) {
        rustix::fs::FileType::RegularFile => "file",
        rustix::fs::FileType::Directory => "dir",
        rustix::fs::FileType::Symlink => "symlink",
        rustix::fs::FileType::Fifo => "fifo",
        rustix::fs::FileType::Socket => "socket",
        _ => "device",
    }
}

fn lossy(name: &OsStr) -> String {
    name.to_string_lossy().into_owned()
}

/// The most name bytes berth reads from one directory (about a million long names): past it a
/// listing, zip, clone or delete of that directory is refused rather than held in memory.
pub const MAX_DIR_NAME_BYTES: usize = 64 << 20;

/// The names in an open directory (not `.` and `..`), with the kind the directory reports.
fn read_names(dir: &OwnedFd) -> io::Result<Vec<(OsString, rustix::fs::FileType)>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for e in rustix::fs::Dir::read_from(dir)? {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        bytes += name.len() + 32;
        if bytes > MAX_DIR_NAME_BYTES {
            return Err(io::Error::other(format!(
                "a directory holds more names than berth reads at once ({} MiB of names); split it from a session",
                MAX_DIR_NAME_BYTES >> 20
            )));
        }
        out.push((OsStr::from_bytes(name).to_os_string(), e.file_type()));
    }
    Ok(out)
}

/// An open handle on one folder's directory.
#[derive(Debug)]
pub struct Folder {
    root: OwnedFd,
}

/// A regular file opened for reading, with the size it had when opened.
pub struct OpenFile {
    pub file: std::fs::File,
    pub size: u64,
}

/// What is at a path, opened.
pub enum Opened {
    File(OpenFile),
    Dir(OwnedFd),
}

impl Folder {
    /// The directory `rel` (`""` for the folder itself), opened.
    pub fn open_dir(&self, rel: &str) -> FsResult<OwnedFd> {
        open_beneath(self.root.as_fd(), rel, open_dir_flags(), Mode::empty()).map_err(|e| match e {
            Errno::NOTDIR => FsError::Bad(format!("\"{rel}\" is a file, not a directory.")),
            Errno::NOENT => {
                FsError::Missing(format!("There is no directory \"{rel}\" in the folder."))
            }
            e => path_error(e, rel),
        })
    }

    /// The entry at `rel` itself (a final symlink is described, not followed).
    pub fn stat(&self, rel: &str) -> FsResult<Entry> {
        let (parent, name) = split(rel);
        if name.is_empty() {
            let st = rustix::fs::fstat(&self.root)?;
            return Ok(Entry::from_stat(String::new(), &st));
        }
        let dir = self.open_dir(parent)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Entry::from_stat(name.to_string(), &st)),
            Err(e) => Err(path_error(e, rel)),
        }
    }

    /// Refuses `rel` as the target of a new file: a symlink or a file on the way is a 400,
    /// something already there a 409. Missing parent directories are fine (made later).
    pub fn check_new(&self, rel: &str) -> FsResult<()> {
        let (parent, name) = split(rel);
        let dir = match open_beneath(self.root.as_fd(), parent, open_dir_flags(), Mode::empty()) {
            Ok(d) => d,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(path_error(e, rel)),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Err(FsError::Exists(format!(
                "A file already exists at \"{rel}\"; uploads never overwrite. Delete or rename it first."
            ))),
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(path_error(e, rel)),
        }
    }

    /// Opens `rel` for reading if it is a regular file or a directory; anything else (a FIFO,
    /// a socket, a device) is refused without being read. The open never blocks.
    pub fn open_read(&self, rel: &str) -> FsResult<Opened> {
        let fd = open_beneath(
            self.root.as_fd(),
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| match e {
            // open(2) of a socket.
            Errno::NXIO => FsError::Bad(format!(
                "\"{rel}\" is a socket, not a file; only files and directories can be downloaded."
            )),
            e => path_error(e, rel),
        })?;
        let st = rustix::fs::fstat(&fd)?;
        match kind_of(stat_mode(&st)) {
            "file" => Ok(Opened::File(OpenFile {
                file: std::fs::File::from(fd),
                size: stat_fields(&st).1,
            })),
            "dir" => Ok(Opened::Dir(fd)),
            other => Err(FsError::Bad(format!(
                "\"{rel}\" is a {}, not a file; only files and directories can be downloaded.",
                match other {
                    "fifo" => "named pipe",
                    "socket" => "socket",
                    _ => "device",
                }
            ))),
        }
    }

    /// The entries of directory `rel`, directories first, then by name; only the page
    /// `offset..offset+limit` is described (`stat`), so a huge directory costs one read of
    /// its names. Returns the page and the number of entries.
    pub fn list(&self, rel: &str, offset: usize, limit: usize) -> FsResult<(Vec<Entry>, usize)> {
        let dir = self.open_dir(rel)?;
        let mut names = read_names(&dir).map_err(|e| match e.kind() {
            io::ErrorKind::Other => FsError::Bad(format!("\"{rel}\": {e}.")),
            _ => e.into(),
        })?;
        let total = names.len();
        names.sort_by(|a, b| {
            let da = a.1 != rustix::fs::FileType::Directory;
            let db = b.1 != rustix::fs::FileType::Directory;
            (da, &a.0).cmp(&(db, &b.0))
        });
        let mut out = Vec::new();
        for (name, _) in names.into_iter().skip(offset).take(limit) {
            // Gone since the read: left out of the page.
            if let Ok(st) = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                out.push(Entry::from_stat(lossy(&name), &st));
            }
        }
        Ok((out, total))
    }

    /// Makes directory `rel` and its missing parents (as `work`), returning it opened.
    pub fn mkdir_all(&self, rel: &str) -> FsResult<OwnedFd> {
        let mut cur = open_beneath(self.root.as_fd(), "", open_dir_flags(), Mode::empty())?;
        let mut done = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if !done.is_empty() {
                done.push('/');
            }
            done.push_str(part);
            let next = match rustix::fs::openat(&cur, part, open_dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur, part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(path_error(e, &done)),
                    }
                    let fd = rustix::fs::openat(&cur, part, open_dir_flags(), Mode::empty())
                        .map_err(|e| path_error(e, &done))?;
                    give_fd_to_work(&fd);
                    fd
                }
                // `O_DIRECTORY | O_NOFOLLOW` on a link says ENOTDIR (or ELOOP).
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let link = rustix::fs::statat(&cur, part, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| kind_of(stat_mode(&st)) == "symlink");
                    return Err(if link {
                        path_error(Errno::LOOP, &done)
                    } else {
                        FsError::Exists(format!(
                            "\"{done}\" is a file, so no directory can be made there."
                        ))
                    });
                }
                Err(e) => return Err(path_error(e, &done)),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Makes the new directory `rel` (parents as needed); something already there is a 409.
    pub fn mkdir(&self, rel: &str) -> FsResult<Entry> {
        let (parent, name) = split(rel);
        WorkRights::run(|| {
            let dir = self.mkdir_all(parent)?;
            rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755))
                .map_err(|e| path_error(e, rel))?;
            if let Ok(fd) = rustix::fs::openat(&dir, name, open_dir_flags(), Mode::empty()) {
                give_fd_to_work(&fd);
            }
            let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(Entry::from_stat(name.to_string(), &st))
        })
    }

    /// Moves the entry `from` to `to` (parents made as needed), never replacing what is at `to`.
    pub fn move_entry(&self, from: &str, to: &str) -> FsResult<Entry> {
        if to == from || to.starts_with(&format!("{from}/")) {
            return Err(FsError::Bad(
                "A directory cannot be moved into itself.".into(),
            ));
        }
        let (fp, fname) = split(from);
        let (tp, tname) = split(to);
        WorkRights::run(|| {
            let src = open_beneath(self.root.as_fd(), fp, open_dir_flags(), Mode::empty())
                .map_err(|e| match e {
                    Errno::NOENT => {
                        FsError::Missing("There is nothing at the path to move.".into())
                    }
                    e => path_error(e, from),
                })?;
            if let Err(e) = rustix::fs::statat(&src, fname, AtFlags::SYMLINK_NOFOLLOW) {
                return Err(match e {
                    Errno::NOENT => {
                        FsError::Missing("There is nothing at the path to move.".into())
                    }
                    e => path_error(e, from),
                });
            }
            let dst = self.mkdir_all(tp)?;
            match rustix::fs::renameat_with(&src, fname, &dst, tname, RenameFlags::NOREPLACE) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    return Err(FsError::Exists(
                        "Something is already at the new path; choose another name.".into(),
                    ))
                }
                Err(Errno::NOENT) => {
                    return Err(FsError::Missing(
                        "There is nothing at the path to move.".into(),
                    ))
                }
                // Moved into itself by a racing rename, or a file system without NOREPLACE.
                Err(Errno::INVAL) => {
                    return Err(FsError::Exists(format!(
                        "\"{from}\" cannot be moved to \"{to}\" now; list the folder and try again."
                    )))
                }
                Err(e) => return Err(path_error(e, to)),
            }
            let st = rustix::fs::statat(&dst, tname, AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(Entry::from_stat(tname.to_string(), &st))
        })
    }

    /// Whether `rel` names an entry (not followed if it is a symlink).
    pub fn exists(&self, rel: &str) -> FsResult<()> {
        self.stat(rel).map(|_| ())
    }

    /// Removes the entry `rel`: a file, a symlink (not its target), or a directory with
    /// everything in it, as `work`.
    pub fn remove(&self, rel: &str) -> FsResult<()> {
        let (parent, name) = split(rel);
        let r = WorkRights::run(|| {
            let dir = open_beneath(self.root.as_fd(), parent, open_dir_flags(), Mode::empty())
                .map_err(|e| path_error(e, rel))?;
            let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| path_error(e, rel))?;
            if kind_of(stat_mode(&st)) == "dir" {
                remove_tree(&dir, OsStr::new(name), 0)?;
            } else {
                match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
                    // A directory was swapped in since the stat.
                    Err(Errno::ISDIR) => remove_tree(&dir, OsStr::new(name), 0)?,
                    r => r.map_err(|e| path_error(e, rel))?,
                }
            }
            Ok(())
        });
        said(r, rel)
    }

    /// Walks the tree under directory `rel` (see [`walk`]).
    pub fn walk(
        &self,
        rel: &str,
        visit: &mut dyn FnMut(&Visit<'_>) -> io::Result<bool>,
    ) -> FsResult<()> {
        let dir = self.open_dir(rel)?;
        Ok(walk(&dir, visit)?)
    }

    /// Bytes of the regular files in the folder (apparent sizes; links not followed).
    pub fn usage(&self) -> io::Result<u64> {
        let mut total = 0u64;
        walk(&self.root, &mut |v| {
            if v.entry.kind == "file" {
                total = total.saturating_add(v.entry.size);
            }
            // Counts what lies within the walk's depth rather than failing (and counting 0).
            Ok(v.depth + 2 < MAX_DEPTH)
        })?;
        Ok(total)
    }

    /// Copies this folder's tree into the (empty) folder `to`: directories and regular files
    /// only, at most the size each file had when listed, permission bits without set-uid,
    /// set-gid or sticky, written as `work`. `progress` gets the bytes copied so far and stops
    /// the copy by answering `false`.
    pub fn copy_into(&self, to: &Folder, mut progress: impl FnMut(u64) -> bool) -> io::Result<()> {
        let mut done = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        walk(&self.root, &mut |v| {
            let parent = std::path::Path::new(v.raw)
                .parent()
                .map_or(OsStr::new(""), |p| p.as_os_str());
            let dst_dir = WorkRights::run(|| {
                open_beneath(to.root.as_fd(), parent, open_dir_flags(), Mode::empty())
            })?;
            let perm = Mode::from_raw_mode(v.entry.mode & PERM_BITS);
            if v.entry.kind == "dir" {
                WorkRights::run(|| {
                    rustix::fs::mkdirat(&dst_dir, v.name, perm | Mode::RWXU)?;
                    Ok::<_, io::Error>(())
                })?;
                return Ok(true);
            }
            if v.entry.kind != "file" {
                return Ok(true);
            }
            let Some(src) = open_regular(v.dir, v.name)? else {
                return Ok(true); // replaced by something else since the listing
            };
            let out = WorkRights::run(|| {
                rustix::fs::openat(
                    &dst_dir,
                    v.name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    perm | Mode::RUSR | Mode::WUSR,
                )
            })?;
            give_fd_to_work(&out);
            let mut out = std::fs::File::from(out);
            let mut src = src.file.take(v.entry.size);
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                done += n as u64;
                if !progress(done) {
                    return Err(io::Error::other("the copy was stopped"));
                }
            }
            Ok(true)
        })
    }
}

/// `name` in `dir` opened for reading when it is (still) a regular file; `None` otherwise.
pub fn open_regular(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<OpenFile>> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Gone, replaced by a link or a socket, unreadable, or leased by a program: left out.
        Err(Errno::NOENT | Errno::LOOP | Errno::NXIO | Errno::ACCESS | Errno::AGAIN) => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    if kind_of(stat_mode(&st)) != "file" {
        return Ok(None);
    }
    Ok(Some(OpenFile {
        file: std::fs::File::from(fd),
        size: stat_fields(&st).1,
    }))
}

/// Removes directory `name` in `parent` and everything in it, through handles only; a
/// directory `work` made unwritable is made writable first (it is `work`'s own).
fn remove_tree(parent: &OwnedFd, name: &OsStr, depth: usize) -> FsResult<()> {
    if depth > MAX_DEPTH {
        return Err(FsError::Bad(format!(
            "The directory is nested deeper than {MAX_DEPTH} levels; remove its inside from a session first."
        )));
    }
    let dir = match rustix::fs::openat(parent, name, open_dir_flags(), Mode::empty()) {
        Ok(d) => d,
        // Replaced by a file or a link since it was looked at: remove that instead.
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(Into::into)
        }
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&dir)?;
    if stat_mode(&st) & 0o300 != 0o300 {
        let _ = rustix::fs::fchmod(
            &dir,
            Mode::from_raw_mode(stat_mode(&st) & PERM_BITS | 0o700),
        );
    }
    for (child, kind) in read_names(&dir)? {
        let r = if kind == rustix::fs::FileType::Directory {
            remove_tree(&dir, &child, depth + 1)
        } else {
            match rustix::fs::unlinkat(&dir, &child, AtFlags::empty()) {
                // A directory after all (the listing said otherwise, or it was swapped in).
                Err(Errno::ISDIR) => remove_tree(&dir, &child, depth + 1),
                Err(Errno::NOENT) => Ok(()),
                r => r.map_err(Into::into),
            }
        };
        r?;
    }
    match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One entry met by [`walk`].
pub struct Visit<'a> {
    /// The path relative to the walk's root (names made UTF-8 for display).
    pub rel: &'a str,
    /// The same path with the names' own bytes, to open it again.
    pub raw: &'a OsStr,
    /// 0 for the walk root's entries.
    pub depth: usize,
    /// The open directory the entry is in, and its name there: open it through these.
    pub dir: BorrowedFd<'a>,
    pub name: &'a OsStr,
    pub entry: &'a Entry,
}

struct Level {
    dir: OwnedFd,
    prefix: String,
    raw: OsString,
    names: std::vec::IntoIter<OsString>,
}

/// Depth-first walk of the tree in `root` through handles: each directory is visited before
/// its contents, names in byte order; symlinks and special files are visited but never
/// entered or followed. Only one directory's names are held per level, never the whole tree.
/// `visit` answering `false` for a directory skips its contents. Deeper than [`MAX_DEPTH`]
/// is an error.
pub fn walk(
    root: &OwnedFd,
    visit: &mut dyn FnMut(&Visit<'_>) -> io::Result<bool>,
) -> io::Result<()> {
    let names = |dir: &OwnedFd| -> io::Result<std::vec::IntoIter<OsString>> {
        let mut n: Vec<OsString> = read_names(dir)?.into_iter().map(|(n, _)| n).collect();
        n.sort();
        Ok(n.into_iter())
    };
    let first = open_beneath(root.as_fd(), "", open_dir_flags(), Mode::empty())?;
    let mut stack = vec![Level {
        names: names(&first)?,
        dir: first,
        prefix: String::new(),
        raw: OsString::new(),
    }];
    while let Some(level) = stack.last_mut() {
        let Some(name) = level.names.next() else {
            stack.pop();
            continue;
        };
        let Ok(st) = rustix::fs::statat(&level.dir, &name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue; // gone since the listing
        };
        let entry = Entry::from_stat(lossy(&name), &st);
        let rel = if level.prefix.is_empty() {
            entry.name.clone()
        } else {
            format!("{}/{}", level.prefix, entry.name)
        };
        let mut raw = level.raw.clone();
        if !raw.is_empty() {
            raw.push("/");
        }
        raw.push(&name);
        let depth = stack.len() - 1;
        let level = stack.last().expect("a level");
        let go_in = visit(&Visit {
            rel: &rel,
            raw: &raw,
            depth,
            dir: level.dir.as_fd(),
            name: &name,
            entry: &entry,
        })?;
        if entry.kind != "dir" || !go_in {
            continue;
        }
        if stack.len() >= MAX_DEPTH {
            return Err(io::Error::other(format!(
                "the folder is nested deeper than {MAX_DEPTH} directories"
            )));
        }
        let level = stack.last().expect("a level");
        // Swapped for a link or a file since the stat: not entered.
        let Ok(dir) = rustix::fs::openat(&level.dir, &name, open_dir_flags(), Mode::empty()) else {
            continue;
        };
        stack.push(Level {
            names: names(&dir)?,
            dir,
            prefix: rel,
            raw,
        });
    }
    Ok(())
}

/// Hands what `fd` is to `work` (uid 1000) so sessions can use it. When berth does not run as
/// root it cannot change owners; the entry is then opened to everyone on the host instead.
fn give_fd_to_work(fd: &OwnedFd) {
    let work = Some(rustix::fs::Uid::from_raw(WORK_UID));
    if rustix::fs::fchown(fd, work, Some(rustix::fs::Gid::from_raw(WORK_UID))).is_err() {
        if let Ok(st) = rustix::fs::fstat(fd) {
            let mode = if kind_of(stat_mode(&st)) == "dir" {
                0o777
            } else {
                0o666
            };
            let _ = rustix::fs::fchmod(fd, Mode::from_raw_mode(mode));
        }
    }
}

/// While alive, this thread's effective uid and gid are `work`'s (1000) and it has no
/// supplementary groups, so file-system writes carry `work`'s rights, not root's. Linux keeps
/// credentials per thread, so only the calling (blocking-pool) thread changes, and the saved
/// uid stays 0 so the guard can switch back on drop — also when the work inside panics.
/// Where the process is not root it already writes with its own rights and nothing changes.
pub struct WorkRights {
    /// What to put back: the supplementary groups and the effective gid.
    saved: Option<(Vec<rustix::process::Gid>, rustix::process::Gid)>,
}

impl WorkRights {
    fn enter() -> Self {
        if !rustix::process::geteuid().is_root() {
            return Self { saved: None };
        }
        let Ok(groups) = rustix::process::getgroups() else {
            return Self::could_not();
        };
        let egid = rustix::process::getegid();
        let work_uid = rustix::process::Uid::from_raw(WORK_UID);
        let work_gid = rustix::process::Gid::from_raw(WORK_UID);
        let guard = Self {
            saved: Some((groups, egid)),
        };
        if rustix::thread::set_thread_groups(&[]).is_err()
            || rustix::thread::set_thread_res_gid(None, work_gid, None).is_err()
            || rustix::thread::set_thread_res_uid(None, work_uid, None).is_err()
        {
            drop(guard); // puts back whatever was changed
            return Self::could_not();
        }
        guard
    }

    /// Root that cannot switch (a user namespace without uid 1000, a seccomp filter) writes
    /// with its own rights, as a non-root gateway does; said once in the log.
    fn could_not() -> Self {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "cannot switch to uid {WORK_UID} for folder writes; they run with the gateway's rights"
            );
        }
        Self { saved: None }
    }

    /// Runs `f` with `work`'s rights (see the type).
    pub fn run<T>(f: impl FnOnce() -> T) -> T {
        let _guard = Self::enter();
        f()
    }
}

impl Drop for WorkRights {
    fn drop(&mut self) {
        if let Some((groups, egid)) = self.saved.take() {
            let root_uid = rustix::process::Uid::ROOT;
            // Back to root first: only then may the group ids change again.
            let restored = rustix::thread::set_thread_res_uid(None, root_uid, None).is_ok()
                && rustix::thread::set_thread_res_gid(None, egid, None).is_ok()
                && rustix::thread::set_thread_groups(&groups).is_ok();
            if !restored {
                // A blocking-pool thread left with the wrong rights would act wrongly later.
                tracing::error!("could not switch a thread back from uid {WORK_UID}; exiting");
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands what a test made by hand to `work`, as if a session had made it.
    fn chown_work(p: &Path) {
        let _ = std::process::Command::new("chown")
            .args(["-hR", "1000:1000"])
            .arg(p)
            .status();
    }

    fn folder() -> (tempfile::TempDir, Storage, Folder, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let s = Storage::open(tmp.path()).unwrap();
        s.create_folder("f").unwrap();
        let f = s.folder("f").unwrap();
        let base = s.folder_dir("f");
        (tmp, s, f, base)
    }

    #[test]
    fn symlinks_are_never_followed_anywhere_in_a_path() {
        let (_tmp, _s, f, base) = folder();
        std::fs::create_dir(base.join("d")).unwrap();
        std::fs::write(base.join("d/x"), "x").unwrap();
        std::os::unix::fs::symlink("/", base.join("root")).unwrap();
        std::os::unix::fs::symlink("d", base.join("inner")).unwrap();
        chown_work(&base);
        assert!(f.check_new("d/new/file").is_ok());
        for p in ["root/etc/passwd", "inner/x", "root", "inner"] {
            assert!(
                matches!(f.open_read(p), Err(FsError::Bad(_))),
                "{p} was followed"
            );
        }
        assert!(matches!(f.open_dir("inner"), Err(FsError::Bad(_))));
        assert!(matches!(f.check_new("root/tmp/x"), Err(FsError::Bad(_))));
        // The link itself can still be described and removed.
        assert_eq!(f.stat("root").unwrap().kind, "symlink");
        f.remove("root").unwrap();
        assert!(std::path::Path::new("/etc/passwd").exists());
    }

    #[test]
    fn without_openat2_links_are_refused_component_by_component() {
        let (_tmp, _s, f, base) = folder();
        std::fs::create_dir_all(base.join("d/e")).unwrap();
        std::fs::write(base.join("d/e/x"), "x").unwrap();
        std::os::unix::fs::symlink("/", base.join("root")).unwrap();
        std::os::unix::fs::symlink("d", base.join("inner")).unwrap();
        chown_work(&base);
        let flags = OFlags::RDONLY;
        // Both paths give the same answers (the switch is process-wide; both are correct).
        for fallback in [false, true] {
            NO_OPENAT2.store(fallback, Ordering::Relaxed);
            let at = f.root.as_fd();
            assert!(open_beneath(at, "d/e/x", flags, Mode::empty()).is_ok());
            for p in ["root/etc/passwd", "inner/e/x", "inner", "d/../root"] {
                let e = open_beneath(at, p, flags, Mode::empty()).unwrap_err();
                assert!(
                    matches!(e, Errno::LOOP | Errno::XDEV),
                    "{p} with fallback={fallback}: {e:?}"
                );
            }
        }
        NO_OPENAT2.store(false, Ordering::Relaxed);
    }

    #[test]
    fn usage_of_a_tree_deeper_than_a_walk_still_counts_what_it_reaches() {
        let (_tmp, _s, f, base) = folder();
        std::fs::write(base.join("top"), [0u8; 100]).unwrap();
        let mut deep = base.clone();
        for _ in 0..MAX_DEPTH + 10 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("bottom"), [0u8; 5]).unwrap();
        // The walk stops short of the bottom instead of failing and counting nothing.
        assert_eq!(f.usage().unwrap(), 100);
    }

    #[test]
    fn special_files_are_never_read() {
        let (_tmp, _s, f, base) = folder();
        let st = std::process::Command::new("mkfifo")
            .arg(base.join("pipe"))
            .status()
            .unwrap();
        assert!(st.success());
        // Opening a FIFO for reading would block until a writer comes; this returns at once.
        assert!(matches!(f.open_read("pipe"), Err(FsError::Bad(m)) if m.contains("named pipe")));
        let (page, total) = f.list("", 0, 10).unwrap();
        assert_eq!(total, 1);
        assert_eq!(page[0].kind, "fifo");
    }

    #[test]
    fn move_never_overwrites_and_walk_orders_dirs_first() {
        let (_tmp, _s, f, base) = folder();
        std::fs::write(base.join("a"), "1").unwrap();
        std::fs::write(base.join("b"), "2").unwrap();
        chown_work(&base);
        assert!(matches!(f.move_entry("a", "b"), Err(FsError::Exists(_))));
        assert_eq!(std::fs::read_to_string(base.join("b")).unwrap(), "2");
        assert!(matches!(f.move_entry("a", "a/x"), Err(FsError::Bad(_))));
        f.move_entry("a", "n/e/w").unwrap();
        assert_eq!(std::fs::read_to_string(base.join("n/e/w")).unwrap(), "1");
        std::fs::create_dir_all(base.join("d/e")).unwrap();
        std::fs::write(base.join("d/e/f"), "x").unwrap();
        let mut seen = Vec::new();
        walk(&f.root, &mut |v| {
            seen.push(v.rel.to_string());
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, vec!["b", "d", "d/e", "d/e/f", "n", "n/e", "n/e/w"]);
        assert_eq!(f.usage().unwrap(), 3);
    }

    #[test]
    fn copies_drop_setuid_bits_and_stop_at_the_listed_size() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, s, f, base) = folder();
        std::fs::create_dir(base.join("bin")).unwrap();
        std::fs::write(base.join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.join("pw")).unwrap();
        chown_work(&base); // (chown clears set-uid bits: set them after)
        std::fs::set_permissions(
            base.join("bin/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        assert_eq!(
            std::fs::metadata(base.join("bin/tool"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o4755
        );
        s.create_folder("g").unwrap();
        let g = s.folder("g").unwrap();
        f.copy_into(&g, |_| true).unwrap();
        let dst = s.folder_dir("g");
        let m = std::fs::metadata(dst.join("bin/tool")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o755);
        assert!(std::fs::symlink_metadata(dst.join("pw")).is_err());
    }

    #[test]
    fn work_rights_hold_only_inside_the_guard() {
        let root = rustix::process::geteuid().is_root();
        let (_tmp, _s, _f, base) = folder();
        let locked = base.parent().unwrap().join("root-only");
        std::fs::create_dir(&locked).unwrap();
        let inside = WorkRights::run(|| {
            (
                rustix::process::geteuid().as_raw(),
                std::fs::write(locked.join("x"), "x").is_ok(),
            )
        });
        if root {
            // `work` cannot write into root's directory; root can again afterwards.
            assert_eq!(inside, (WORK_UID, false));
            assert!(rustix::process::geteuid().is_root());
            assert_eq!(rustix::process::getegid().as_raw(), 0);
        }
        std::fs::write(locked.join("y"), "y").unwrap();
        // A panic inside still switches back.
        let _ = std::panic::catch_unwind(|| WorkRights::run(|| panic!("inside")));
        assert_eq!(rustix::process::geteuid().is_root(), root);
    }

    #[test]
    fn removes_trees_through_handles() {
        let (_tmp, _s, f, base) = folder();
        std::fs::create_dir_all(base.join("t/u/v")).unwrap();
        std::fs::write(base.join("t/u/v/w"), "w").unwrap();
        std::os::unix::fs::symlink("/etc", base.join("t/link")).unwrap();
        chown_work(&base);
        f.remove("t").unwrap();
        assert!(!base.join("t").exists());
        assert!(std::path::Path::new("/etc/passwd").exists());
        assert!(matches!(f.remove("t"), Err(FsError::Missing(_))));
    }
}
