//! Persistent homes: every user's folder of type `home`, mounted at `/home/work` in their
//! sessions unless a launch asks for a clean home.
//!
//! Invariant kept here: a user has at most one live home (the partial unique index
//! `vfolders_one_home`, and [`ensure`] takes the row a racing request made), it is made only
//! by berth ([`ensure`]: when its owner lists their folders or launches a session that wants
//! it), and it is never shared, renamed, or trashed while a live session mounts it
//! ([`refuse_sharing`], [`refuse_rename`], [`refuse_trash_in_use`]; the sharing and folder
//! routes call them); at most one of a user's homes waits in the trash
//! ([`refuse_second_trashed`]). It is filled from the session image's own `/home/work` the first time a
//! session uses it (`vfolders.seeded_at`, set by [`mark_seeded`] once that session's container
//! was started).

use super::store::{self, FolderRow};
use crate::auth::CurrentUser;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::AppState;
use api::vfolders::{FolderKind, HOME_NAME};

/// The user's live home folder, made now if they have none (or theirs is in the trash).
/// Race-safe: two requests making it at once end with one folder, the loser's insert refused
/// by the unique index and the winner's row returned.
pub async fn ensure(state: &AppState, user: &CurrentUser) -> AppResult<FolderRow> {
    for _ in 0..3 {
        if let Some(id) = live_home_id(&state.db, &user.id).await? {
            return store::visible(&state.db, user, &id).await;
        }
        match super::insert_folder(
            state,
            HOME_NAME,
            FolderKind::Home,
            Some(&user.id),
            None,
            "READY",
        )
        .await
        {
            Ok(id) => return store::visible(&state.db, user, &id).await,
            // Another request made it meanwhile: read again.
            Err(AppError::Problem(p)) if p.status == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Err(AppError::conflict(
        "Your home folder is being made by another request; try again.",
    ))
}

/// The id of the user's live home, if they have one.
pub async fn live_home_id(db: &Db, user_id: &str) -> AppResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM vfolders WHERE kind = 'home' AND owner_id = $1 AND deleted_at IS NULL",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// Whether the home still needs filling from an image's `/home/work`.
pub async fn needs_seeding(db: &Db, home_id: &str) -> sqlx::Result<bool> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT seeded_at FROM vfolders WHERE id = $1")
            .bind(home_id)
            .fetch_optional(db)
            .await?;
    Ok(matches!(row, Some((None,))))
}

/// Records that the home was filled (a session that seeded it was started, or found running
/// after a restart).
pub async fn mark_seeded(db: &Db, home_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE vfolders SET seeded_at = $1 WHERE id = $2 AND seeded_at IS NULL")
        .bind(db::now())
        .bind(home_id)
        .execute(db)
        .await?;
    Ok(())
}

/// [`mark_seeded`], a failure logged: the worst outcome is a second seeding.
pub async fn mark_seeded_logged(db: &Db, home_id: &str) {
    if let Err(e) = mark_seeded(db, home_id).await {
        tracing::warn!(home = home_id, "recording the home as seeded failed: {e}");
    }
}

/// Live sessions that mount `home_id` as their home, by name.
pub async fn used_by(db: &Db, home_id: &str) -> AppResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sessions
         WHERE home_vfolder = $1 AND status NOT IN ('TERMINATED', 'CANCELLED', 'ERROR')
         ORDER BY seq",
    )
    .bind(home_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

fn is_home(row: &FolderRow) -> bool {
    row.kind == FolderKind::Home.as_str()
}

/// Invitations and members: a home is never shared.
pub fn refuse_sharing(row: &FolderRow) -> AppResult<()> {
    if is_home(row) {
        return Err(AppError::conflict(format!(
            "Folder {} is your home folder, which is never shared; clone it (or copy files into a folder of your own) and share that.",
            row.name
        )));
    }
    Ok(())
}

/// A home keeps its name.
pub fn refuse_rename(row: &FolderRow) -> AppResult<()> {
    if is_home(row) {
        return Err(AppError::conflict(format!(
            "Folder {} is your home folder; it keeps its name.",
            row.name
        )));
    }
    Ok(())
}

/// A home used by a live session stays out of the trash.
pub async fn refuse_trash_in_use(db: &Db, row: &FolderRow) -> AppResult<()> {
    if !is_home(row) {
        return Ok(());
    }
    let users = used_by(db, &row.id).await?;
    if users.is_empty() {
        return Ok(());
    }
    Err(AppError::conflict(format!(
        "Your home folder is in use by session{} {}; end {} first.",
        if users.len() == 1 { "" } else { "s" },
        users.join(", "),
        if users.len() == 1 { "it" } else { "them" }
    )))
}

/// A home goes to the trash only while no older one of its owner's waits there: trashed homes
/// keep their files (and space) until purged, and do not count against `max_vfolders`, so
/// trashing one home after another would otherwise take storage without bound.
pub async fn refuse_second_trashed(db: &Db, row: &FolderRow) -> AppResult<()> {
    if !is_home(row) {
        return Ok(());
    }
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM vfolders WHERE kind = 'home' AND owner_id = $1 AND deleted_at IS NOT NULL",
    )
    .bind(&row.owner_id)
    .fetch_one(db)
    .await?;
    if n == 0 {
        return Ok(());
    }
    Err(AppError::conflict(
        "Your previous home folder is still in the trash, where it keeps its files and its space; purge it before trashing this one.",
    ))
}

/// Checks a session's home again right before its container is created: it must still be the
/// owner's live home. `Err(sentence)` otherwise.
pub async fn recheck(db: &Db, owner_id: &str, home_id: &str) -> AppResult<Result<(), String>> {
    Ok(match live_home_id(db, owner_id).await? {
        Some(id) if id == home_id => Ok(()),
        _ => Err(
            "The session's home folder was deleted while it waited, so no container was created; launch it again for a fresh home.".into(),
        ),
    })
}

/// The quota of a home: the owner's `home_quota_bytes`.
pub async fn quota(db: &Db, owner_id: &str) -> AppResult<Option<u64>> {
    Ok(crate::policy::effective(db, owner_id)
        .await?
        .policy
        .home_quota_bytes)
}

/// The home a new session mounts: `None` for a clean one; else the owner's home, made now if
/// need be. Refused (nothing written) when no node sees the folder storage, and when the home
/// is also among the session's mounts.
pub async fn for_launch(
    state: &AppState,
    user: &CurrentUser,
    mode: api::session::HomeMode,
    mounts: &[api::vfolders::Mount],
) -> AppResult<Option<String>> {
    if mode == api::session::HomeMode::Clean {
        return Ok(None);
    }
    let nodes = crate::nodes::rows(&state.db).await?;
    if !nodes.iter().any(|n| n.reaches_storage()) {
        return Err(AppError::new(
            api::ProblemType::Unschedulable,
            "No node sees the folder storage, so your home folder cannot be mounted anywhere; launch with a clean home (\"home\": \"clean\"), or ask an administrator to add a node with --storage.",
        ));
    }
    if let Some(id) = live_home_id(&state.db, &user.id).await? {
        if mounts.iter().any(|m| m.vfolder == id) {
            return Err(AppError::field(
                "mounts",
                "Your home folder is mounted at /home/work already; leave it out of the mounts (or launch with a clean home to mount it elsewhere).",
            ));
        }
    }
    Ok(Some(ensure(state, user).await?.id))
}

/// Where folders meant for `/home/work/X` are mounted in a session with a persistent home:
/// `/mnt/berth/X`, with a link at `/home/work/X` (see [`outside_home`]).
pub const FOLDERS_OUTSIDE_HOME: &str = "/mnt/berth";

/// Mount points of a session with a persistent home, moved out of it.
///
/// A persistent home is shared by the owner's running sessions, so what is in it can change at
/// any moment, and the engine resolves a mount point by walking the path before it mounts: a
/// directory swapped for a symlink in between would put the folder wherever the link points —
/// on the node itself, where dockerd 20.10's archive API (which berth uses to write a session's
/// files) mounts volumes in the host's namespace. So no mount point lies inside the home:
/// a folder meant for `/home/work/X` is mounted at `/mnt/berth/X` (a path only root can change)
/// and appears at `/home/work/X` as a link, written with the session's files. Other mount
/// points stay as they are.
pub fn outside_home(
    mounts: Vec<api::vfolders::Mount>,
) -> (Vec<api::vfolders::Mount>, Vec<crate::nodes::ContainerFile>) {
    let mut links = Vec::new();
    let moved = mounts
        .into_iter()
        .map(|mut m| {
            if let Some(rel) = m.path.strip_prefix(&format!("{}/", api::vfolders::HOME)) {
                let target = format!("{FOLDERS_OUTSIDE_HOME}/{rel}");
                links.push(crate::nodes::ContainerFile::link(
                    m.path.clone(),
                    target.clone(),
                ));
                m.path = target;
            }
            m
        })
        .collect();
    (moved, links)
}

/// A session's home as a mount: the folder, read-write, at `/home/work`.
pub fn as_mount(home_id: Option<&str>) -> Option<api::vfolders::Mount> {
    home_id.map(|id| api::vfolders::Mount {
        vfolder: id.to_string(),
        name: HOME_NAME.to_string(),
        path: api::vfolders::HOME.to_string(),
        mode: "rw".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_in_the_home_move_out_of_it_and_leave_links() {
        let m = |path: &str| api::vfolders::Mount {
            vfolder: "f".into(),
            name: "data".into(),
            path: path.into(),
            mode: "rw".into(),
        };
        let (moved, links) =
            outside_home(vec![m("/home/work/data"), m("/opt/x"), m("/home/work/a/b")]);
        let paths: Vec<&str> = moved.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/mnt/berth/data", "/opt/x", "/mnt/berth/a/b"]);
        let l: Vec<(&str, Option<&str>)> = links
            .iter()
            .map(|f| (f.path.as_str(), f.link_to.as_deref()))
            .collect();
        assert_eq!(
            l,
            [
                ("/home/work/data", Some("/mnt/berth/data")),
                ("/home/work/a/b", Some("/mnt/berth/a/b"))
            ]
        );
    }
}
