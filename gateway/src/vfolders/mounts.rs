//! Mounts at launch: a session's requested folders resolved to folders the owner can use,
//! mount points, and modes — every rule checked before anything starts.

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
