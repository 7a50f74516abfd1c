//! Seeding a persistent home: the first time a user's home folder is mounted at `/home/work`,
//! it is filled with what the session's image keeps there (`.bashrc`, `.profile`, Jupyter
//! settings) — the files the image would have shown with a clean home.
//!
//! How: a throwaway container of the same image is created (never started, no network,
//! labelled with the instance and `berth.seed`, named `berth-seed-SESSION`), its
//! `/home/work` is read through the engine's archive API (a tar whose top entry is `work/`)
//! and streamed into the session's created container at `/home`, which lands in the
//! bind-mounted home; then the throwaway goes. The engine unpacks inside the container's own
//! file system view, so nothing in the home (a symlink a session left there) is followed on
//! the host.
//!
//! What the owner put in the home before its first use (uploads through the file manager, or
//! a session that mounted it as a plain folder) is not replaced: on its way through the
//! gateway the archive is filtered ([`filter_home`]) against the home as the gateway sees it,
//! dropping every entry whose path is already taken (by a file, a link, anything but a
//! directory — and all beneath it); the image's files go into an existing directory where
//! their names are free. The directory's own entry is kept, so the engine makes sure it is
//! still a directory when it unpacks into it (a session of the same owner swapping it for a
//! link meanwhile gets it replaced, as the engine replaces anything but a directory there),
//! and gives it the image's owner and mode. Best effort against writers at the same moment
//! (another session of the owner's mounting the home): a file made between the look and the
//! unpacking can still be replaced. Seeding that takes longer than [`SEED_PATIENCE`] fails
//! with a sentence. A leftover throwaway (a gateway killed mid-way) is removed when the
//! session is prepared again, or by reconciling once it is older than [`SEED_GRACE_S`].

use super::docker::{LABEL_INSTANCE, LABEL_SESSION};
use super::{ContainerSpec, NodeError, NodeResult};
use crate::vfolders::fs::{Folder, FsError};
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::bytes::Bytes;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Marks a throwaway seeding container (its value: the session it seeds for).
pub const LABEL_SEED: &str = "berth.seed";

/// How long a seeding container is left alone by reconciling: seeding takes seconds, so one
/// older than this is a leftover.
pub const SEED_GRACE_S: i64 = 600;

/// How long filling a home may take before the session ends in ERROR (a stalled engine).
pub const SEED_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

fn seed_name(session_id: &str) -> String {
    format!("berth-seed-{session_id}")
}

fn failed(what: &str, e: DockerError) -> NodeError {
    let detail = match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    };
    NodeError(format!(
        "The home folder could not be filled from the image's /home/work: Docker could not {what}: {detail}."
    ))
}

async fn remove(docker: &Docker, name: &str) {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(opts)).await {
        Ok(())
        | Err(DockerError::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => {}
        Err(e) => tracing::warn!(container = name, "removing a seeding container failed: {e}"),
    }
}

/// Fills the home mounted at `/home/work` in the created container `target` from `spec`'s
/// image, around what `home` (the same folder, as the gateway sees it) holds already. An
/// image without `/home/work` leaves the home as it is.
pub(super) async fn seed_home(
    docker: &Docker,
    instance: &str,
    target: &str,
    spec: &ContainerSpec,
    home: &Arc<Folder>,
) -> NodeResult<()> {
    let name = seed_name(&spec.session_id);
    remove(docker, &name).await;
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_string(), instance.to_string()),
        // Never a live session's id: a leftover is removed like any container of none.
        (
            LABEL_SESSION.to_string(),
            format!("seed-{}", spec.session_id),
        ),
        (LABEL_SEED.to_string(), spec.session_id.clone()),
    ]);
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(vec!["true".into()]),
        user: Some("1000:1000".into()),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    let seed = docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| failed("create a container of the image to copy from", e))?
        .id;
    let copied = tokio::time::timeout(SEED_PATIENCE, copy_home(docker, &seed, target, home.clone()))
        .await
        .unwrap_or_else(|_| {
            Err(NodeError(format!(
                "The home folder could not be filled from the image's /home/work within {} minutes; the engine stopped answering.",
                SEED_PATIENCE.as_secs() / 60
            )))
        });
    // (Removing the throwaway also ends a stalled read of its files.)
    remove(docker, &seed).await;
    copied
}

async fn copy_home(docker: &Docker, seed: &str, target: &str, home: Arc<Folder>) -> NodeResult<()> {
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path("/home/work")
        .build();
    let mut tar = docker.download_from_container(seed, Some(opts));
    let first = match tar.next().await {
        None => return Ok(()),
        // The image has no /home/work: nothing to copy.
        Some(Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        })) => return Ok(()),
        Some(Err(e)) => return Err(failed("read the image's /home/work", e)),
        Some(Ok(b)) => b,
    };
    let rest = tar.map_err(io::Error::other);
    let image_home = futures_util::stream::once(futures_util::future::ready(Ok(first))).chain(rest);
    // The image's archive is read and the filtered one written on a blocking thread (the
    // `tar` crate reads synchronously), handed to the upload a chunk at a time.
    let reader = SyncIoBridge::new(StreamReader::new(image_home));
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(16);
    let filter = tokio::task::spawn_blocking(move || {
        let out = ChannelWriter(tx.clone());
        let filtered = filter_home(reader, out, &home);
        if let Err(e) = &filtered {
            // The upload must fail rather than end as if the archive were whole (what was
            // unpacked before stays: the next session does not seed again over it).
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        filtered
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let opts = UploadToContainerOptionsBuilder::default()
        .path("/home")
        .build();
    let uploaded = docker
        .upload_to_container(target, Some(opts), bollard::body_try_stream(body))
        .await;
    let filtered = filter
        .await
        .map_err(|e| NodeError(format!("The home folder could not be filled: {e}.")))?;
    match (filtered, uploaded) {
        // The engine refused the upload part-way (a full disk): its sentence, not the pipe's.
        (Err(e), Err(up)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Err(failed("write it into the session's home", up))
        }
        (Err(e), _) => Err(NodeError(format!(
            "The home folder could not be filled from the image's /home/work: its files could not be read: {e}."
        ))),
        (Ok(_), Err(e)) => Err(failed("write it into the session's home", e)),
        (Ok(kept), Ok(())) => {
            tracing::debug!(left = kept.left, "home seeded around what was there");
            Ok(())
        }
    }
}

/// Writes what it is given into the channel the upload reads (from a blocking thread).
struct ChannelWriter(mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload ended"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What [`filter_home`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Entries of the image's home left out because their path was taken.
    pub left: usize,
}

/// Copies the image's home archive (top entry `work/`) from `input` to `output`, leaving
/// out every entry whose path `home` already holds — a file, a link, a FIFO: anything but a
/// directory — with everything beneath it. A directory `home` already has keeps the
/// image's entry (see the module doc) and gets the image's files where names are free. A
/// hard link to a path left out is left out too. Paths are looked at with `Folder::stat`,
/// which follows no link, so nothing in the home is followed on the host; one that cannot be
/// looked at (or is no UTF-8) counts as taken.
pub fn filter_home(input: impl Read, output: impl Write, home: &Folder) -> io::Result<Filtered> {
    let mut archive = tar::Archive::new(input);
    let mut out = tar::Builder::new(output);
    out.mode(tar::HeaderMode::Complete);
    let mut taken: Vec<PathBuf> = Vec::new();
    let mut done = Filtered::default();
    let under_taken = |taken: &[PathBuf], p: &Path| taken.iter().any(|t| p.starts_with(t));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = path.strip_prefix("work").unwrap_or(&path).to_path_buf();
        let kind = entry.header().entry_type();
        if !rel.as_os_str().is_empty() {
            if under_taken(&taken, &rel) {
                done.left += 1;
                continue;
            }
            let looked = match rel.to_str() {
                Some(r) => home.stat(r),
                None => Err(FsError::Bad("not UTF-8".into())),
            };
            match looked {
                // A free name: the image's entry goes in.
                Err(FsError::Missing(_)) => {}
                // The owner's directory stays (a directory); the image's files go into it.
                Ok(e) if e.kind == "dir" && kind.is_dir() => {}
                // Taken (or not to be looked at): neither it nor anything beneath it.
                _ => {
                    taken.push(rel);
                    done.left += 1;
                    continue;
                }
            }
        }
        let mut header = entry.header().clone();
        if kind.is_symlink() || kind.is_hard_link() {
            let Some(to) = entry.link_name()?.map(|l| l.into_owned()) else {
                continue;
            };
            let to_rel = to.strip_prefix("work").unwrap_or(&to);
            if kind.is_hard_link() && under_taken(&taken, to_rel) {
                done.left += 1;
                continue;
            }
            out.append_link(&mut header, &path, &to)?;
        } else {
            out.append_data(&mut header, &path, &mut entry)?;
        }
    }
    out.into_inner()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfolders::fs::Storage;

    /// An image's home as the engine's archive API sends it: top entry `work/`; a link's
    /// target after `->`.
    fn image_home() -> Vec<u8> {
        let long = format!("work/{}/deep.txt", "d".repeat(120));
        let entries = [
            ("work/", "dir", ""),
            ("work/.bashrc", "file", "image bashrc"),
            ("work/.profile", "file", "image profile"),
            ("work/.local/", "dir", ""),
            ("work/.local/bin/", "dir", ""),
            ("work/.local/bin/tool", "file", "tool"),
            ("work/.config/", "dir", ""),
            ("work/.config/app.toml", "file", "cfg"),
            ("work/same-profile", "hard", "work/.profile"),
            ("work/same-bashrc", "hard", "work/.bashrc"),
            ("work/link", "sym", ".bashrc"),
            (long.as_str(), "file", "deep"),
        ];
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(match kind {
                "dir" => tar::EntryType::Directory,
                "hard" => tar::EntryType::Link,
                "sym" => tar::EntryType::Symlink,
                _ => tar::EntryType::Regular,
            });
            h.set_mode(0o755);
            h.set_uid(1000);
            h.set_gid(1000);
            if matches!(kind, "hard" | "sym") {
                h.set_size(0);
                b.append_link(&mut h, path, data).unwrap();
            } else {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (p, data)
            })
            .collect()
    }

    /// An empty home folder: (its storage's temporary root, its directory, its handle).
    fn empty_home() -> (tempfile::TempDir, PathBuf, Folder) {
        let tmp = tempfile::tempdir().unwrap();
        let storage = Storage::open(tmp.path()).unwrap();
        storage.create_folder("h").unwrap();
        let base = storage.folder_dir("h");
        let home = storage.folder("h").unwrap();
        (tmp, base, home)
    }

    #[test]
    fn seeding_leaves_what_the_home_holds_and_fills_the_free_names() {
        let (_tmp, base, home) = empty_home();
        // The owner's: a file where the image has one, a directory the image also has (with
        // a file of theirs), and a link (to the host) where the image has a directory.
        std::fs::write(base.join(".profile"), "mine").unwrap();
        std::fs::create_dir_all(base.join(".local")).unwrap();
        std::fs::write(base.join(".local/notes"), "mine too").unwrap();
        std::os::unix::fs::symlink("/etc", base.join(".config")).unwrap();

        let mut out = Vec::new();
        let done = filter_home(&image_home()[..], &mut out, &home).unwrap();
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        let long = format!("work/{}/deep.txt", "d".repeat(120));
        assert_eq!(
            names,
            [
                "work/",
                "work/.bashrc",
                // Kept, so the engine checks it is still a directory when it unpacks into it.
                "work/.local/",
                "work/.local/bin/",
                "work/.local/bin/tool",
                "work/same-bashrc",
                "work/link",
                long.as_str(),
            ],
            "{got:?}"
        );
        // .profile, .config/ and what is beneath it, and the hard link to the owner's .profile.
        assert_eq!(done.left, 4);
        assert_eq!(got[1].1, b"image bashrc");
        assert_eq!(got[7].1, b"deep");
        // Nothing in the home itself changed.
        assert_eq!(
            std::fs::read_to_string(base.join(".profile")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_link(base.join(".config")).unwrap(),
            Path::new("/etc")
        );
    }

    #[test]
    fn an_empty_home_gets_the_whole_image_home() {
        let (_tmp, _, home) = empty_home();
        let mut out = Vec::new();
        let done = filter_home(&image_home()[..], &mut out, &home).unwrap();
        assert_eq!(done.left, 0);
        assert_eq!(entries(&out), entries(&image_home()));
    }

    #[test]
    fn a_cut_archive_is_an_error() {
        let (_tmp, _, home) = empty_home();
        let whole = image_home();
        let mut out = Vec::new();
        assert!(filter_home(&whole[..700], &mut out, &home).is_err());
    }
}
