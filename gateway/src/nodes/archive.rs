//! The tar archive of files berth writes into a session's container before it starts
//! ([`super::ContainerSpec::files`]): dotfiles, SSH keys and configuration. The engine unpacks
//! it (the archive API) inside the container's own root and mounts, so links a session left
//! resolve inside the container, never on the node; ownership and mode are exact whatever
//! rights the container keeps.

use super::ContainerFile;
use std::collections::BTreeSet;

/// Directories this shallow (`/etc`, `/home/work`, `/opt/x`) are never given an entry: they
/// are the image's (or a mount point) and keep their owner and mode. Deeper parents of a file
/// get one with the file's owner, mode `0755`, so `~/.config/git/config` leaves `~/.config`
/// and `~/.config/git` writable by `work` (the engine would make missing ones root's).
const KEEP_DEPTH: usize = 2;

/// The archive (paths relative to `/`) of `files`, each with its parent directories below
/// [`KEEP_DEPTH`] first. Set-id and sticky bits never reach the container.
pub fn tar_of(files: &[ContainerFile]) -> std::io::Result<Vec<u8>> {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for f in files {
        let rel = f.path.trim_start_matches('/');
        let parts: Vec<&str> = rel.split('/').collect();
        for depth in (KEEP_DEPTH + 1)..parts.len() {
            let dir = parts[..depth].join("/");
            if dirs.insert(dir.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_uid(f.uid.into());
                h.set_gid(f.gid.into());
                h.set_mtime(mtime);
                h.set_size(0);
                b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_uid(f.uid.into());
        h.set_gid(f.gid.into());
        h.set_mtime(mtime);
        if let Some(target) = &f.link_to {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, rel, target)?;
            continue;
        }
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(f.mode & 0o777);
        h.set_size(f.content.len() as u64);
        b.append_data(&mut h, rel, f.content.as_slice())?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, uid: u32, mode: u32, content: &str) -> ContainerFile {
        ContainerFile {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            uid,
            gid: uid,
            mode,
            link_to: None,
        }
    }

    #[test]
    fn files_come_with_their_deep_parents_owned_like_them_and_without_set_id_bits() {
        let tar = tar_of(&[
            file("/home/work/.config/git/config", 1000, 0o644, "[user]\n"),
            file("/etc/profile.d/team.sh", 0, 0o4755, "alias ll='ls -l'\n"),
            file("/home/work/.config/git/ignore", 1000, 0o600, "*.o\n"),
            ContainerFile::link("/home/work/data".into(), "/mnt/berth/data".into()),
        ])
        .unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let got: Vec<(String, bool, u32, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type().is_dir(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("home/work/.config/".into(), true, 0o755, 1000),
                ("home/work/.config/git/".into(), true, 0o755, 1000),
                ("home/work/.config/git/config".into(), false, 0o644, 1000),
                ("etc/profile.d/team.sh".into(), false, 0o755, 0),
                ("home/work/.config/git/ignore".into(), false, 0o600, 1000),
                ("home/work/data".into(), false, 0o777, 1000),
            ]
        );
    }
}
