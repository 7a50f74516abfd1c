//! Mounts at launch: a session's requested folders resolved to folders the owner can use,
//! mount points, and modes — every rule checked before anything starts, and checked again
//! ([`recheck`]) right before the container is created, since access may have gone while the
//! session waited.

use super::store;
use crate::auth::CurrentUser;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use api::session::ValidMount;
use api::vfolders::{check_mount_points, mount_point, Mount, Permission};
use api::FieldError;

/// Resolves `wanted` for `user`; all problems at once, each naming its mount.
pub async fn resolve(db: &Db, user: &CurrentUser, wanted: &[ValidMount]) -> AppResult<Vec<Mount>> {
    let mut errs = Vec::new();
    let mut out: Vec<Mount> = Vec::new();
    for (i, m) in wanted.iter().enumerate() {
        let field = format!("mounts[{i}]");
        let Some(row) = store::find_usable(db, user, &m.vfolder).await? else {
            errs.push(FieldError::new(
                format!("{field}.vfolder"),
                format!(
                    "There is no folder named \"{}\" that you can use.",
                    m.vfolder.escape_default()
                ),
            ));
            continue;
        };
        if row.state != "READY" {
            errs.push(FieldError::new(
                format!("{field}.vfolder"),
                format!(
                    "Folder {} is still being filled by a clone; mount it when that finishes.",
                    row.name
                ),
            ));
            continue;
        }
        if out.iter().any(|o| o.vfolder == row.id) {
            errs.push(FieldError::new(
                format!("{field}.vfolder"),
                format!(
                    "Folder {} is mounted twice; a folder may be mounted once per session.",
                    row.name
                ),
            ));
            continue;
        }
        let perm = row.permission();
        // A mount may lower the permission, never raise it.
        let read_only = match m.read_only {
            Some(false) if perm == Permission::Ro => {
                errs.push(FieldError::new(
                    format!("{field}.mode"),
                    format!(
                        "Folder {} is shared with you read-only; mount it ro.",
                        row.name
                    ),
                ));
                continue;
            }
            Some(ro) => ro,
            None => perm == Permission::Ro,
        };
        let path = match mount_point(m.alias.as_deref(), &row.name) {
            Ok(p) => p,
            Err(e) => {
                errs.push(FieldError::new(format!("{field}.path"), e));
                continue;
            }
        };
        out.push(Mount {
            vfolder: row.id.clone(),
            name: row.name.clone(),
            path,
            mode: if read_only { "ro" } else { "rw" }.into(),
        });
    }
    let points: Vec<(String, String)> = out
        .iter()
        .map(|m| (m.name.clone(), m.path.clone()))
        .collect();
    errs.extend(
        check_mount_points(&points)
            .into_iter()
            .map(|m| FieldError::new("mounts", m)),
    );
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(AppError::validation(errs))
    }
}

/// Checks a session's stored mounts again for its owner, right before its container is
/// created: a folder unshared, trashed or deleted while the session waited, or one whose
/// permission was lowered to read-only under a read-write mount, is refused. Returns the
/// sentence naming the first such folder.
pub async fn recheck(
    db: &Db,
    owner: &CurrentUser,
    mounts: &[Mount],
) -> AppResult<Result<(), String>> {
    for m in mounts {
        let Some(row) = store::find_usable(db, owner, &m.vfolder)
            .await?
            .filter(|r| r.id == m.vfolder)
        else {
            return Ok(Err(format!(
                "Folder {} is no longer available to {} (unshared, trashed or deleted while the session waited), so no container was created.",
                m.name, owner.username
            )));
        };
        if row.state != "READY" {
            return Ok(Err(format!(
                "Folder {} is being filled by a clone, so no container was created.",
                m.name
            )));
        }
        if m.mode != "ro" && row.permission() == Permission::Ro {
            return Ok(Err(format!(
                "Folder {} is now shared with {} read-only, but the session mounts it read-write, so no container was created.",
                m.name, owner.username
            )));
        }
    }
    Ok(Ok(()))
}
