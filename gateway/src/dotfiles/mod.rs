//! Dotfiles at three levels — the domain's, a project's, a user's own — kept in the
//! `dotfiles` table ([`store`]), managed under `/api/v1/dotfiles`, `/api/v1/projects/{id}/dotfiles`
//! and `/api/v1/admin/dotfiles` ([`routes`]), and written into every session's container
//! before it starts ([`for_session`], through `ContainerSpec::files`).
//!
//! Invariant: dotfiles are written in order domain → project → user, and for one path the
//! user's wins ([`merge`]); `~/X` lands in the session user's home owned by uid/gid 1000,
//! `/etc/X` owned by root, each with its own mode.

pub mod routes;
pub mod store;

use crate::nodes::ContainerFile;
use crate::vfolders::fs::WORK_UID;
use api::dotfiles::{place, validate_path, Place};

/// The container file of a stored dotfile: `~/X` is the work user's `/home/work/X`,
/// `/etc/X` root's. `None` for a row that does not pass today's rules (it is skipped).
fn container_file(row: &store::Row) -> Option<ContainerFile> {
    let level = row.level()?;
    validate_path(&row.path, level).ok()?;
    let (path, owner) = match place(&row.path)? {
        Place::Home(rel) => (format!("{}/{rel}", api::vfolders::HOME), WORK_UID),
        Place::Etc(rel) => (format!("/etc/{rel}"), 0),
    };
    Some(ContainerFile {
        path,
        content: row.content.clone().into_bytes(),
        uid: owner,
        gid: owner,
        mode: row.mode_bits(),
        link_to: None,
    })
}

/// The files of `rows` (in order: domain, project, user) as the container gets them: a later
/// file replaces an earlier one at the same path, and also an earlier one it would put a folder
/// in place of, or one that needs its path to be a folder (a user's `~/.config` file wins over
/// the domain's `~/.config/git/config`). Rows that no longer pass the path rules are left out.
pub fn merge(rows: &[store::Row]) -> Vec<ContainerFile> {
    let mut out: Vec<ContainerFile> = Vec::new();
    for row in rows {
        let Some(file) = container_file(row) else {
            tracing::warn!(path = %row.path.escape_default(), level = %row.level, "a stored dotfile no longer passes the path rules; it is left out");
            continue;
        };
        out.retain(|f| f.path != file.path && !store::clash(&f.path, &file.path));
        out.push(file);
    }
    out
}

/// The dotfiles a session of `owner` (in `project`, if any) gets, merged; `Err` is the
/// sentence a launch that could not read them ends with.
pub async fn for_session(
    db: &crate::db::Db,
    session: &str,
    project: Option<&str>,
    owner: &str,
) -> Result<Vec<ContainerFile>, String> {
    match store::for_session(db, project, owner).await {
        Ok(rows) => Ok(merge(&rows)),
        Err(e) => {
            tracing::warn!(session, "reading the session's dotfiles failed: {e:?}");
            Err("The session's dotfiles could not be read, so no container was created.".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(level: &str, path: &str, content: &str, mode: i64) -> store::Row {
        store::Row {
            level: level.into(),
            path: path.into(),
            content: content.into(),
            mode,
            updated_at: String::new(),
        }
    }

    fn summary(files: &[ContainerFile]) -> Vec<(String, String, u32, u32)> {
        files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    String::from_utf8(f.content.clone()).unwrap(),
                    f.uid,
                    f.mode,
                )
            })
            .collect()
    }

    #[test]
    fn the_users_file_wins_then_the_projects_then_the_domains() {
        let files = merge(&[
            row("domain", "/etc/profile.d/team.sh", "export TEAM=all", 0o644),
            row("domain", "~/.bashrc", "domain", 0o644),
            row("domain", "~/.vimrc", "set nu", 0o644),
            row("project", "~/.bashrc", "project", 0o600),
            row("project", "~/.gitconfig", "[user]", 0o644),
            row("user", "~/.bashrc", "user", 0o755),
        ]);
        assert_eq!(
            summary(&files),
            vec![
                (
                    "/etc/profile.d/team.sh".into(),
                    "export TEAM=all".into(),
                    0,
                    0o644
                ),
                ("/home/work/.vimrc".into(), "set nu".into(), 1000, 0o644),
                ("/home/work/.gitconfig".into(), "[user]".into(), 1000, 0o644),
                ("/home/work/.bashrc".into(), "user".into(), 1000, 0o755),
            ]
        );
        assert!(files.iter().all(|f| f.gid == f.uid));
    }

    #[test]
    fn a_later_file_replaces_what_would_need_its_path_as_a_folder_or_the_other_way_round() {
        let files = merge(&[
            row("domain", "~/.config/git/config", "domain's", 0o644),
            row("domain", "~/.config/htop/htoprc", "domain's", 0o644),
            row("project", "~/.local", "project's file", 0o644),
            row("user", "~/.config", "user's file", 0o644),
            row("user", "~/.local/bin/tool", "user's tool", 0o755),
        ]);
        assert_eq!(
            summary(&files),
            vec![
                (
                    "/home/work/.config".into(),
                    "user's file".into(),
                    1000,
                    0o644
                ),
                (
                    "/home/work/.local/bin/tool".into(),
                    "user's tool".into(),
                    1000,
                    0o755
                ),
            ]
        );
    }

    #[test]
    fn rows_that_no_longer_pass_the_rules_are_left_out() {
        let files = merge(&[
            row("domain", "~/../etc/shadow", "x", 0o644),
            row("user", "/etc/passwd", "x", 0o644),
            row("elsewhere", "~/.bashrc", "x", 0o644),
            row("user", "~/.ssh/authorized_keys", "x", 0o644),
            row("user", "~/.profile", "ok", 0o4755),
        ]);
        assert_eq!(
            summary(&files),
            vec![("/home/work/.profile".into(), "ok".into(), 1000, 0o755)]
        );
    }
}
