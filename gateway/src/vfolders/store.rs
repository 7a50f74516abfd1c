//! Folder rows and who may do what with them.

use crate::auth::CurrentUser;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use api::vfolders::{Permission, VFolder};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FolderRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub owner_id: Option<String>,
    pub project_id: Option<String>,
    pub scope_id: String,
    pub state: String,
    pub created_at: String,
    pub deleted_at: Option<String>,
    /// The owner's username or the project's name.
    pub owner_name: String,
    /// What the asking user may do, as stored (`OWNER`, `RO`, `RW`, `WD`).
    pub perm: String,
}

impl FolderRow {
    pub fn permission(&self) -> Permission {
        Permission::parse(&self.perm).unwrap_or(Permission::Ro)
    }

    pub fn to_api(&self, bytes: u64, quota_bytes: Option<u64>) -> VFolder {
        VFolder {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            owner: self.owner_name.clone(),
            project: self.project_id.clone(),
            permission: self.permission(),
            bytes,
            quota_bytes,
            created_at: self.created_at.clone(),
            deleted_at: self.deleted_at.clone(),
            state: self.state.clone(),
        }
    }
}

/// Folders with the asking user's permission, as `v`. `$1` is the user id, `$2` 1 for admins.
/// Admins own every project folder; project members may write and delete in them.
const SELECT: &str = "
SELECT * FROM (
SELECT v.id, v.name, v.kind, v.owner_id, v.project_id, v.scope_id, v.state, v.created_at,
       v.deleted_at,
       COALESCE(u.username, p.name, '') AS owner_name,
       CASE
         WHEN v.kind IN ('user', 'home') AND v.owner_id = $1 THEN 'OWNER'
         WHEN v.kind = 'project' AND $2 = 1 THEN 'OWNER'
         WHEN m.permission IS NOT NULL THEN m.permission
         WHEN v.kind = 'project' AND pm.user_id IS NOT NULL THEN 'WD'
       END AS perm
FROM vfolders v
LEFT JOIN users u ON u.id = v.owner_id
LEFT JOIN projects p ON p.id = v.project_id
LEFT JOIN vfolder_members m ON m.vfolder_id = v.id AND m.user_id = $1
LEFT JOIN project_members pm ON pm.project_id = v.project_id AND pm.user_id = $1
) v
WHERE v.perm IS NOT NULL";

/// Every live folder the user can use, by name.
pub async fn usable(db: &Db, user: &CurrentUser) -> AppResult<Vec<FolderRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} AND v.deleted_at IS NULL ORDER BY v.name, v.id"
    )))
    .bind(&user.id)
    .bind(i64::from(user.is_admin()))
    .fetch_all(db)
    .await?)
}

/// The user's folders in the trash.
pub async fn trashed(db: &Db, user: &CurrentUser) -> AppResult<Vec<FolderRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} AND v.deleted_at IS NOT NULL AND perm = 'OWNER' ORDER BY v.deleted_at DESC"
    )))
    .bind(&user.id)
    .bind(i64::from(user.is_admin()))
    .fetch_all(db)
    .await?)
}

/// One folder the user may see (a trashed one only by its owner). Anything else — another
/// user's folder, a malformed id — answers exactly like a missing folder.
pub async fn visible(db: &Db, user: &CurrentUser, id: &str) -> AppResult<FolderRow> {
    let row: Option<FolderRow> = if uuid::Uuid::parse_str(id).is_ok() {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} AND v.id = $3")))
            .bind(&user.id)
            .bind(i64::from(user.is_admin()))
            .bind(id)
            .fetch_optional(db)
            .await?
    } else {
        None
    };
    match row {
        Some(r) if r.deleted_at.is_none() || r.permission() == Permission::Owner => Ok(r),
        _ => Err(AppError::not_found("folder")),
    }
}

/// A live, ready folder on which the user has at least `need`.
pub async fn require(
    db: &Db,
    user: &CurrentUser,
    id: &str,
    need: Permission,
) -> AppResult<FolderRow> {
    let row = visible(db, user, id).await?;
    if row.deleted_at.is_some() {
        return Err(AppError::conflict(format!(
            "Folder {} is in the trash; restore it first.",
            row.name
        )));
    }
    if need > Permission::Ro && row.state != "READY" {
        return Err(AppError::conflict(format!(
            "Folder {} is still being filled by a clone; wait until it finishes.",
            row.name
        )));
    }
    if row.permission() < need {
        let what = match need {
            Permission::Ro => "read",
            Permission::Rw => "write to",
            Permission::Wd => "delete files in",
            Permission::Owner => "manage",
        };
        return Err(AppError::forbidden(format!(
            "You may not {what} folder {}: your permission is {}.",
            row.name,
            row.permission().describe()
        )));
    }
    Ok(row)
}

/// A folder named `name_or_id` the user can use: by id, else their own by name, then one
/// shared with them, then a project folder.
pub async fn find_usable(
    db: &Db,
    user: &CurrentUser,
    name_or_id: &str,
) -> AppResult<Option<FolderRow>> {
    let all = usable(db, user).await?;
    if let Some(r) = all.iter().find(|r| r.id == name_or_id) {
        return Ok(Some(r.clone()));
    }
    let rank = |r: &FolderRow| api::vfolders::name_rank(&r.kind, r.permission());
    Ok(all
        .into_iter()
        .filter(|r| r.name == name_or_id)
        .min_by_key(rank))
}

/// The per-folder quota of a folder's owner (the default policy for project folders; the
/// owner's `home_quota_bytes` for a home).
pub async fn quota(db: &Db, row: &FolderRow) -> AppResult<Option<u64>> {
    if row.kind == api::vfolders::FolderKind::Home.as_str() {
        return super::home::quota(db, row.owner_id.as_deref().unwrap_or_default()).await;
    }
    Ok(match &row.owner_id {
        Some(owner) => {
            crate::policy::effective(db, owner)
                .await?
                .policy
                .vfolder_quota_bytes
        }
        None => crate::policy::defaults(db).await?.vfolder_quota_bytes,
    })
}

/// Live sessions that mount the folder (as a home too). The text match narrows the rows on
/// both backends; the decoded mounts decide.
pub async fn mounted_by(db: &Db, folder_id: &str) -> AppResult<Vec<String>> {
    let mut names = mounted_as_folder(db, folder_id).await?;
    for n in super::home::used_by(db, folder_id).await? {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

async fn mounted_as_folder(db: &Db, folder_id: &str) -> AppResult<Vec<String>> {
    let rows: Vec<(String, crate::db::Json<Vec<api::vfolders::Mount>>)> = sqlx::query_as(
        "SELECT s.name, s.mounts FROM sessions s
         WHERE s.status NOT IN ('TERMINATED', 'CANCELLED', 'ERROR') AND s.mounts LIKE $1
         ORDER BY s.seq",
    )
    .bind(format!("%{folder_id}%"))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, mounts)| mounts.iter().any(|m| m.vfolder == folder_id))
        .map(|(n, _)| n)
        .collect())
}
