//! The storage backend: folders as directories on the gateway host's disk, named by id
//! (`DATA_DIR/vfolders/ID`), and unfinished uploads beside them (`DATA_DIR/uploads/ID`).
//! Everything here is blocking file-system work; callers run it on the blocking pool.
//!
//! Containment: a path from a client is first normalised by `api::vfolders::normalize_path`
//! (no `..`, no absolute paths, no NUL), then resolved here against the real file system so
//! that a symlink — for example one a session created — cannot lead outside the folder.
//! Operations on an entry itself (delete, move) do not follow its final symlink, so such a link
//! can still be removed. A session could swap a directory for a symlink between the check and
//! the use; closing that race needs `openat2(RESOLVE_BENEATH)` and is left for a later change.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The uid and gid of `work` inside session containers.
pub const WORK_UID: u32 = 1000;

#[derive(Debug, Clone)]
pub struct Storage {
    folders: PathBuf,
    uploads: PathBuf,
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

pub type FsResult<T> = Result<T, FsError>;

impl Storage {
    /// Creates the directories under `data_dir` (made absolute: Docker bind-mounts need it).
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let data_dir = std::fs::canonicalize(data_dir)?;
        let s = Self {
            folders: data_dir.join("vfolders"),
            uploads: data_dir.join("uploads"),
        };
        std::fs::create_dir_all(&s.folders)?;
        std::fs::create_dir_all(&s.uploads)?;
        Ok(s)
    }

    /// The host directory of a folder.
    pub fn folder_dir(&self, id: &str) -> PathBuf {
        self.folders.join(id)
    }

    pub fn upload_file(&self, id: &str) -> PathBuf {
        self.uploads.join(id)
    }

    pub fn uploads_dir(&self) -> &Path {
        &self.uploads
    }

    /// Creates a folder's directory, owned by `work`.
    pub fn create_folder(&self, id: &str) -> io::Result<()> {
        let dir = self.folder_dir(id);
        std::fs::create_dir(&dir)?;
        give_to_work(&dir, true);
        Ok(())
    }

    /// Removes a folder's directory and everything in it.
    pub fn purge_folder(&self, id: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.folder_dir(id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// `rel` (already normalised) resolved inside folder `id`, following symlinks; it must stay
    /// inside the folder. The target need not exist; its deepest existing ancestor is checked.
    pub fn resolve(&self, id: &str, rel: &str) -> FsResult<PathBuf> {
        let base = std::fs::canonicalize(self.folder_dir(id))?;
        let full = base.join(rel);
        let mut existing = full.as_path();
        let mut rest = Vec::new();
        loop {
            match std::fs::canonicalize(existing) {
                Ok(real) => {
                    if !real.starts_with(&base) {
                        return Err(FsError::Bad(format!(
                            "\"{rel}\" leads outside the folder through a symbolic link."
                        )));
                    }
                    let mut out = real;
                    for r in rest.iter().rev() {
                        out.push(r);
                    }
                    return Ok(out);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A dangling symlink is not "missing": it points somewhere unknown.
                    if std::fs::symlink_metadata(existing).is_ok() {
                        return Err(FsError::Bad(format!(
                            "\"{rel}\" goes through a symbolic link that points nowhere."
                        )));
                    }
                    let Some(name) = existing.file_name() else {
                        return Err(FsError::Missing(
                            "The folder's directory is missing.".into(),
                        ));
                    };
                    rest.push(name.to_os_string());
                    existing = existing.parent().unwrap_or(&base);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The entry `rel` itself (its final component not followed), inside folder `id`.
    pub fn resolve_entry(&self, id: &str, rel: &str) -> FsResult<PathBuf> {
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", rel),
        };
        let dir = self.resolve(id, parent)?;
        Ok(dir.join(name))
    }
}

/// Hands a path berth created to `work` (uid 1000) so sessions can use it. When berth does not
/// run as root it cannot change owners; the path is then opened to everyone on the host instead.
pub fn give_to_work(path: &Path, dir: bool) {
    if std::os::unix::fs::lchown(path, Some(WORK_UID), Some(WORK_UID)).is_err() {
        use std::os::unix::fs::PermissionsExt;
        let mode = if dir { 0o777 } else { 0o666 };
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
}

/// Bytes of the files under `dir` (symlinks not followed).
pub fn usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
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

pub fn entry(path: &Path, name: String) -> io::Result<Entry> {
    let m = std::fs::symlink_metadata(path)?;
    let kind = if m.file_type().is_symlink() {
        "symlink"
    } else if m.is_dir() {
        "dir"
    } else {
        "file"
    };
    Ok(Entry {
        name,
        kind,
        size: if m.is_file() { m.len() } else { 0 },
        mtime: m.mtime(),
        mode: m.mode(),
    })
}

/// The entries of a directory: directories first, then by name.
pub fn list_dir(dir: &Path) -> FsResult<Vec<Entry>> {
    let m = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FsError::Missing(
                "There is no such directory in the folder.".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if !m.is_dir() {
        return Err(FsError::Bad("That path is a file, not a directory.".into()));
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(en) = entry(&e.path(), name) {
            out.push(en);
        }
    }
    out.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    Ok(out)
}

/// Creates `dir` and its missing parents inside `base`, each handed to `work`.
pub fn mkdir_all(base: &Path, dir: &Path) -> FsResult<()> {
    let rel = dir
        .strip_prefix(base)
        .map_err(|_| FsError::Bad("outside".into()))?;
    let mut cur = base.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(FsError::Exists(format!(
                    "\"{}\" is a file, so no directory can be made there.",
                    cur.strip_prefix(base).unwrap_or(&cur).display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur)?;
                give_to_work(&cur, true);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes a file, a symlink, or a directory with everything in it.
pub fn remove(path: &Path) -> FsResult<()> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FsError::Missing("There is nothing at that path.".into()))
        }
        Err(e) => return Err(e.into()),
    };
    if m.is_dir() {
        std::fs::remove_dir_all(path)?;
    } else {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// Moves `from` to `to` without ever replacing what is at `to`.
pub fn move_entry(from: &Path, to: &Path) -> FsResult<()> {
    if std::fs::symlink_metadata(from).is_err() {
        return Err(FsError::Missing(
            "There is nothing at the path to move.".into(),
        ));
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(FsError::Exists(
            "Something is already at the new path; choose another name.".into(),
        ));
    }
    if to.starts_with(from) {
        return Err(FsError::Bad(
            "A directory cannot be moved into itself.".into(),
        ));
    }
    // A hard link refuses an existing target atomically; directories cannot be linked, so
    // they are renamed after the check above.
    if std::fs::symlink_metadata(from)?.is_dir() {
        std::fs::rename(from, to)?;
    } else {
        match std::fs::hard_link(from, to) {
            Ok(()) => std::fs::remove_file(from)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(FsError::Exists(
                    "Something is already at the new path; choose another name.".into(),
                ))
            }
            Err(_) => std::fs::rename(from, to)?,
        }
    }
    Ok(())
}

/// Everything under `dir` for an archive or a copy: `(relative path, entry)`, directories
/// before their contents; symlinks are left out.
pub fn walk(dir: &Path) -> io::Result<Vec<(String, Entry)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let mut items: Vec<_> = std::fs::read_dir(&d)?.flatten().collect();
        items.sort_by_key(|e| e.file_name());
        for e in items.into_iter().rev() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(en) = entry(&e.path(), name) else {
                continue;
            };
            match en.kind {
                "dir" => {
                    stack.push((e.path(), rel.clone()));
                    out.push((rel, en));
                }
                "file" => out.push((rel, en)),
                _ => {}
            }
        }
    }
    // Directory order from the stack is depth-first but reversed per level; sorting by path
    // keeps each directory before its contents.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Copies the tree at `from` into the (existing, empty) directory `to`, calling `progress`
/// with the bytes copied so far; stops early when `progress` answers `false`.
pub fn copy_tree(from: &Path, to: &Path, mut progress: impl FnMut(u64) -> bool) -> io::Result<()> {
    let mut done = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (rel, en) in walk(from)? {
        let dst = to.join(&rel);
        if en.kind == "dir" {
            std::fs::create_dir_all(&dst)?;
            give_to_work(&dst, true);
            continue;
        }
        let mut src = std::fs::File::open(from.join(&rel))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dst)?;
        use std::io::{Read, Write};
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
        drop(out);
        give_to_work(&dst, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_symlinks_leading_out() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Storage::open(tmp.path()).unwrap();
        s.create_folder("f").unwrap();
        let base = s.folder_dir("f");
        std::fs::create_dir(base.join("d")).unwrap();
        std::os::unix::fs::symlink("/", base.join("root")).unwrap();
        std::os::unix::fs::symlink("d", base.join("inner")).unwrap();
        assert!(s.resolve("f", "d/new/file").is_ok());
        assert!(s.resolve("f", "inner/x").unwrap().ends_with("f/d/x"));
        assert!(matches!(
            s.resolve("f", "root/etc/passwd"),
            Err(FsError::Bad(_))
        ));
        assert!(matches!(s.resolve("f", "root"), Err(FsError::Bad(_))));
        // The link itself can still be named (to delete it).
        assert!(s.resolve_entry("f", "root").unwrap().ends_with("f/root"));
    }

    #[test]
    fn move_never_overwrites_and_walk_orders_dirs_first() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::fs::write(&a, "1").unwrap();
        std::fs::write(&b, "2").unwrap();
        assert!(matches!(move_entry(&a, &b), Err(FsError::Exists(_))));
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "2");
        std::fs::create_dir_all(tmp.path().join("d/e")).unwrap();
        std::fs::write(tmp.path().join("d/e/f"), "x").unwrap();
        let w: Vec<String> = walk(tmp.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(w, vec!["a", "b", "d", "d/e", "d/e/f"]);
    }
}
