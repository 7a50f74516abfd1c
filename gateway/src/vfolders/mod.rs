//! `/api/v1/vfolders`: persistent data folders — the folders themselves (here), their files
//! ([`files`]), resumable uploads ([`uploads`]), sharing and clones ([`sharing`]), and mounts
//! into sessions ([`mounts`]). Storage is a directory per folder on the gateway host
//! ([`fs::Storage`]); metadata, membership and invitations are in the database.

pub mod files;
pub mod fs;
pub mod home;
pub mod mounts;
pub mod sharing;
pub mod store;
pub mod uploads;
pub mod usage;
mod zip;

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, AppResult};
use crate::{db, AppState};
use api::vfolders::{CreateVFolder, FolderKind, Permission, UpdateVFolder, VFolder};
use api::ProblemType;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use fs::FsError;
use serde::Deserialize;
use store::FolderRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/vfolders", get(list).post(create))
        .route("/vfolders/{id}", get(get_one).patch(rename).delete(trash))
        .route("/vfolders/{id}/restore", post(restore))
        .route("/vfolders/{id}/purge", post(purge))
        .merge(files::router())
        .merge(uploads::router())
        .merge(sharing::router())
}

/// Runs blocking file-system work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FsError> + Send + 'static,
) -> AppResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(fs_error),
        Err(e) => Err(AppError::Internal(e.into())),
    }
}

/// A storage error as the API answers it; `path` problems name the field `path`.
pub(crate) fn fs_error(e: FsError) -> AppError {
    match e {
        FsError::Bad(m) => AppError::field("path", m),
        FsError::Missing(m) => AppError::new(ProblemType::NotFound, m),
        FsError::Exists(m) => AppError::conflict(m),
        FsError::Io(e) => AppError::Internal(e.into()),
    }
}

/// The API view of a folder with its usage and quota.
pub(crate) async fn to_api(state: &AppState, row: &FolderRow) -> AppResult<VFolder> {
    let quota = store::quota(&state.db, row).await?;
    Ok(with_usage(state, row, quota).await)
}

/// The bytes in folder `id` (remembered for a few seconds; see [`usage`]).
pub(crate) async fn folder_usage(state: &AppState, id: &str) -> u64 {
    state.storage.usage.get(&state.storage, id).await
}

/// The API view with the folder's usage and the given quota.
async fn with_usage(state: &AppState, row: &FolderRow, quota: Option<u64>) -> VFolder {
    row.to_api(folder_usage(state, &row.id).await, quota)
}

/// Opens folder `id` and runs `f` on it on the blocking pool.
pub(crate) async fn in_folder<T: Send + 'static>(
    state: &AppState,
    id: &str,
    f: impl FnOnce(&fs::Folder) -> Result<T, FsError> + Send + 'static,
) -> AppResult<T> {
    let (storage, id) = (state.storage.clone(), id.to_string());
    blocking(move || f(&storage.folder(&id)?)).await
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    trash: Option<String>,
}

#[utoipa::path(
    get,
    path = "/vfolders",
    operation_id = "list_vfolders",
    tag = "vfolders",
    summary = "Folders I can use (mine, shared with me, my projects'); trash=true: mine in the trash",
    params(("trash" = Option<String>, Query, description = "`true` lists my folders in the trash")),
    responses((status = 200, description = "OK", body = Vec<api::vfolders::VFolder>), (status = 400, response = crate::openapi::BadRequest))
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<Vec<VFolder>>> {
    let rows = match q.trash.as_deref() {
        Some("true" | "1") => store::trashed(&state.db, &user).await?,
        None | Some("false" | "0") => {
            // The home is made the first time its owner looks for it.
            home::ensure(&state, &user).await?;
            store::usable(&state.db, &user).await?
        }
        Some(_) => return Err(AppError::field("trash", "Use trash=true or leave it out.")),
    };
    // One policy lookup per owner, not per folder.
    // (A home has a quota of its own.)
    let mut quotas: std::collections::HashMap<(Option<String>, bool), Option<u64>> =
        Default::default();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let key = (r.owner_id.clone(), r.kind == FolderKind::Home.as_str());
        let quota = match quotas.get(&key) {
            Some(q) => *q,
            None => {
                let q = store::quota(&state.db, r).await?;
                quotas.insert(key, q);
                q
            }
        };
        out.push(with_usage(&state, r, quota).await);
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/vfolders/{id}",
    operation_id = "get_vfolder",
    tag = "vfolders",
    summary = "One folder with its usage and quota",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 200, description = "OK", body = api::vfolders::VFolder), (status = 404, response = crate::openapi::NotFound))
)]
async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<VFolder>> {
    let row = store::visible(&state.db, &user, &id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

/// Answers a unique-name violation with a sentence.
fn name_taken(e: sqlx::Error, name: &str) -> AppError {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => AppError::conflict(format!(
            "There is already a folder named \"{name}\"; choose another name."
        )),
        e => e.into(),
    }
}

/// Refuses a new personal folder past the owner's `max_vfolders`. Folders in the trash count:
/// they keep their files (and their space) until purged, so trashing one and making another
/// would otherwise take storage without bound.
pub(crate) async fn check_folder_count(state: &AppState, user_id: &str) -> AppResult<()> {
    let policy = crate::policy::effective(&state.db, user_id).await?.policy;
    if let Some(max) = policy.max_vfolders {
        let (n, trashed): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(deleted_at) FROM vfolders WHERE kind = 'user' AND owner_id = $1",
        )
        .bind(user_id)
        .fetch_one(&state.db)
        .await?;
        if n as u64 >= max {
            let how = if trashed > 0 {
                format!(
                    " ({trashed} of them in the trash, where a folder keeps its space until purged); purge or delete one first."
                )
            } else {
                "; delete one first.".to_string()
            };
            return Err(AppError::new(
                ProblemType::Quota,
                format!(
                    "Your policy allows {max} folder{} and you have {n}{how}",
                    if max == 1 { "" } else { "s" }
                ),
            ));
        }
    }
    Ok(())
}

/// Inserts a folder row and creates its directory; the row goes away if the directory cannot
/// be made. `state` is `READY` or `CLONING`.
pub(crate) async fn insert_folder(
    state: &AppState,
    name: &str,
    kind: FolderKind,
    owner_id: Option<&str>,
    project_id: Option<&str>,
    folder_state: &str,
) -> AppResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    // A home's name is unique apart from its owner's own folders (one of theirs may be called
    // "home" from before homes existed); `vfolders_one_home` keeps one home per user.
    let scope = match kind {
        FolderKind::Home => format!("home:{}", owner_id.unwrap_or_default()),
        _ => owner_id.or(project_id).unwrap_or_default().to_string(),
    };
    sqlx::query(
        "INSERT INTO vfolders(id, name, kind, owner_id, project_id, scope_id, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(name)
    .bind(kind.as_str())
    .bind(owner_id)
    .bind(project_id)
    .bind(scope)
    .bind(folder_state)
    .bind(db::now())
    .execute(&state.db)
    .await
    .map_err(|e| name_taken(e, name))?;
    let storage = state.storage.clone();
    let fid = id.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || storage.create_folder(&fid)).await? {
        sqlx::query("DELETE FROM vfolders WHERE id = $1")
            .bind(&id)
            .execute(&state.db)
            .await?;
        return Err(AppError::Internal(e.into()));
    }
    Ok(id)
}

#[utoipa::path(
    post,
    path = "/vfolders",
    operation_id = "create_vfolder",
    tag = "vfolders",
    summary = "Create a folder (project folders: admins)",
    request_body = api::vfolders::CreateVFolder,
    responses((status = 201, description = "Created", body = api::vfolders::VFolder), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateVFolder>,
) -> AppResult<(StatusCode, Json<VFolder>)> {
    let kind = req.validate().map_err(AppError::validation)?;
    let id = match kind {
        FolderKind::User => {
            check_folder_count(&state, &user.id).await?;
            insert_folder(&state, &req.name, kind, Some(&user.id), None, "READY").await?
        }
        // Refused by `validate`: berth makes homes itself.
        FolderKind::Home => {
            return Err(AppError::field("type", "Berth makes home folders itself."))
        }
        FolderKind::Project => {
            if !user.is_admin() {
                return Err(AppError::forbidden(
                    "Only administrators create project folders.",
                ));
            }
            let p = req.project.as_deref().unwrap_or_default();
            let project: Option<(String,)> =
                sqlx::query_as("SELECT id FROM projects WHERE id = $1 OR name = $2")
                    .bind(p)
                    .bind(p)
                    .fetch_optional(&state.db)
                    .await?;
            let Some((pid,)) = project else {
                return Err(AppError::field(
                    "project",
                    format!("There is no project named \"{}\".", p.escape_default()),
                ));
            };
            insert_folder(&state, &req.name, kind, None, Some(&pid), "READY").await?
        }
    };
    let row = store::visible(&state.db, &user, &id).await?;
    Ok((StatusCode::CREATED, Json(to_api(&state, &row).await?)))
}

#[utoipa::path(
    patch,
    path = "/vfolders/{id}",
    operation_id = "rename_vfolder",
    tag = "vfolders",
    summary = "Rename (owner)",
    params(("id" = String, Path, description = "folder id or name")),
    request_body = api::vfolders::UpdateVFolder,
    responses((status = 200, description = "OK", body = api::vfolders::VFolder), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn rename(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateVFolder>,
) -> AppResult<Json<VFolder>> {
    api::vfolders::validate_name(&req.name).map_err(|m| AppError::field("name", m))?;
    let row = store::require(&state.db, &user, &id, Permission::Owner).await?;
    home::refuse_rename(&row)?;
    api::vfolders::check_not_home_name(&req.name).map_err(|m| AppError::field("name", m))?;
    sqlx::query("UPDATE vfolders SET name = $1 WHERE id = $2")
        .bind(&req.name)
        .bind(&row.id)
        .execute(&state.db)
        .await
        .map_err(|e| name_taken(e, &req.name))?;
    let row = store::visible(&state.db, &user, &id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

#[utoipa::path(
    delete,
    path = "/vfolders/{id}",
    operation_id = "trash_vfolder",
    tag = "vfolders",
    summary = "Move to the trash (owner)",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 200, description = "OK", body = api::vfolders::VFolder), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn trash(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<VFolder>> {
    let row = store::require(&state.db, &user, &id, Permission::Owner).await?;
    home::refuse_trash_in_use(&state.db, &row).await?;
    home::refuse_second_trashed(&state.db, &row).await?;
    sqlx::query("UPDATE vfolders SET deleted_at = $1 WHERE id = $2")
        .bind(db::now())
        .bind(&row.id)
        .execute(&state.db)
        .await?;
    let row = store::visible(&state.db, &user, &id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/restore",
    operation_id = "restore_vfolder",
    tag = "vfolders",
    summary = "Restore from the trash (owner)",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 200, description = "OK", body = api::vfolders::VFolder), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn restore(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<VFolder>> {
    let row = store::visible(&state.db, &user, &id).await?;
    if row.permission() != Permission::Owner {
        return Err(AppError::forbidden(
            "Only the folder's owner may restore it.",
        ));
    }
    if row.deleted_at.is_none() {
        return Err(AppError::conflict(format!(
            "Folder {} is not in the trash.",
            row.name
        )));
    }
    // (A folder in the trash counts against `max_vfolders` already: restoring adds none.)
    sqlx::query("UPDATE vfolders SET deleted_at = NULL WHERE id = $1")
        .bind(&row.id)
        .execute(&state.db)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() && row.kind == "home" => {
                AppError::conflict(
                    "You have a newer home folder already; a trashed home cannot be restored beside it (purge it, or trash the newer one while no session uses it).",
                )
            }
            e => name_taken(e, &row.name),
        })?;
    let row = store::visible(&state.db, &user, &id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/purge",
    operation_id = "purge_vfolder",
    tag = "vfolders",
    summary = "Delete for good (only from the trash; not while mounted)",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 204, description = "Deleted"), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn purge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let row = store::visible(&state.db, &user, &id).await?;
    if row.permission() != Permission::Owner {
        return Err(AppError::forbidden(
            "Only the folder's owner may delete it.",
        ));
    }
    if row.deleted_at.is_none() {
        return Err(AppError::conflict(format!(
            "Folder {} is not in the trash; move it there first (DELETE), then purge it.",
            row.name
        )));
    }
    let users = store::mounted_by(&state.db, &row.id).await?;
    if !users.is_empty() {
        return Err(AppError::conflict(format!(
            "Folder {} is mounted by running session{} {}; end {} first.",
            row.name,
            if users.len() == 1 { "" } else { "s" },
            users.join(", "),
            if users.len() == 1 { "it" } else { "them" }
        )));
    }
    uploads::drop_folder_uploads(&state, &row.id).await?;
    let mut tx = state.db.begin().await?;
    for q in [
        "DELETE FROM vfolder_members WHERE vfolder_id = $1",
        "DELETE FROM vfolder_invitations WHERE vfolder_id = $1",
        "DELETE FROM vfolders WHERE id = $1",
    ] {
        sqlx::query(q).bind(&row.id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let storage = state.storage.clone();
    let fid = row.id.clone();
    tokio::task::spawn_blocking(move || storage.purge_folder(&fid)).await??;
    state.storage.usage.forget(&row.id);
    Ok(StatusCode::NO_CONTENT)
}
