//! `vfolder upload`: a file or a directory tree (walked locally, sorted), each file sent with
//! tus (see [`super::tus`]); never overwriting.

use super::progress::{lock, Progress};
use super::resolve::{resolve, shown, split_target};
use super::tus::{send_file, tus_cancel, RETRY};
use super::UploadArgs;
use crate::client::{api_path, segment, Client};
use crate::{Error, Result};
use api::vfolders as vf;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One file to upload: from where, to which path, how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub local: PathBuf,
    pub dest: String,
    pub len: u64,
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
pub(super) fn local_name(p: &Path) -> Result<String> {
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
pub(super) async fn is_dir(c: &Client, folder: &str, path: &str) -> Result<bool> {
    let q = format!(
        "{}?path={}&limit=1",
        api_path(&["vfolders", folder, "files"]),
        segment(path)
    );
    match c.get::<vf::FileList>(&q).await {
        Ok(_) => Ok(true),
        Err(Error::Problem { problem, .. }) if matches!(problem.status, 400 | 404) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `vfolder upload`: a file or a directory tree; never overwrites.
pub(super) async fn upload(c: &Client, a: UploadArgs) -> Result<()> {
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
            let req = vf::MkdirRequest { path: dir.clone() };
            match c
                .post::<_, vf::FileEntry>(&api_path(&["vfolders", &f.id, "mkdir"]), &req)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
