//! `/api/v1/dotfiles` (your own), `/api/v1/projects/{id}/dotfiles` (a project's: admins
//! write, admins and its members read, anyone else finds no project) and
//! `/api/v1/admin/dotfiles` (the domain's: admins only). Each level answers `GET` with its
//! list ordered by path, `PUT` with one entry created (201) or replaced (200), `DELETE ?path=`
//! with 204.

use super::store::{self, Put, DOMAIN};
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, AppResult};
use crate::AppState;
use api::dotfiles::{validate_path, Dotfile, Level, PutDotfile, MAX_PER_LEVEL};
use api::ProblemType;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dotfiles", get(list_own).put(put_own).delete(delete_own))
        .route(
            "/projects/{id}/dotfiles",
            get(list_project).put(put_project).delete(delete_project),
        )
        .route(
            "/admin/dotfiles",
            get(list_domain).put(put_domain).delete(delete_domain),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathQuery {
    path: String,
}

/// A level's owner id, as the caller may reach it.
struct Owner {
    level: Level,
    id: String,
}

async fn list(state: &AppState, owner: Owner) -> AppResult<Json<Vec<Dotfile>>> {
    let rows = store::list(&state.db, owner.level, &owner.id).await?;
    Ok(Json(rows.into_iter().map(store::Row::wire).collect()))
}

async fn put(
    state: &AppState,
    owner: Owner,
    req: PutDotfile,
) -> AppResult<(StatusCode, Json<Dotfile>)> {
    req.validate(owner.level).map_err(AppError::validation)?;
    match store::put(&state.db, owner.level, &owner.id, &req).await? {
        Put::Created(row) => Ok((StatusCode::CREATED, Json(row.wire()))),
        Put::Replaced(row) => Ok((StatusCode::OK, Json(row.wire()))),
        Put::Full => Err(AppError::new(
            ProblemType::Quota,
            format!(
                "This level keeps {MAX_PER_LEVEL} dotfiles already, the most it may; remove one first."
            ),
        )),
        Put::Clash(other) => Err(AppError::field(
            "path",
            format!(
                "\"{}\" and the dotfile \"{}\" cannot both be: one would have to be a folder; remove the other first.",
                req.path.escape_default(),
                other.escape_default()
            ),
        )),
    }
}

async fn delete(state: &AppState, owner: Owner, path: &str) -> AppResult<StatusCode> {
    validate_path(path, owner.level).map_err(|m| AppError::field("path", m))?;
    if store::delete(&state.db, owner.level, &owner.id, path).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("dotfile"))
    }
}

fn own(user: &CurrentUser) -> Owner {
    Owner {
        level: Level::User,
        id: user.id.clone(),
    }
}

/// Project `id_or_name`'s level, for an admin or (`write` false) one of its members; anyone
/// else finds no project, exactly like a missing one.
async fn project(
    state: &AppState,
    user: &CurrentUser,
    id_or_name: &str,
    write: bool,
) -> AppResult<Owner> {
    let found: Option<(String,)> = if user.is_admin() {
        sqlx::query_as("SELECT id FROM projects WHERE id = $1 OR name = $2")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_optional(&state.db)
            .await?
    } else {
        crate::projects::member_project(&state.db, &user.id, id_or_name)
            .await?
            .map(|(id, _)| (id,))
    };
    let (id,) = found.ok_or_else(|| AppError::not_found("project"))?;
    if write {
        user.require_admin()?;
    }
    Ok(Owner {
        level: Level::Project,
        id,
    })
}

fn domain(user: &CurrentUser) -> AppResult<Owner> {
    user.require_admin()?;
    Ok(Owner {
        level: Level::Domain,
        id: DOMAIN.into(),
    })
}

#[utoipa::path(
    get,
    path = "/dotfiles",
    operation_id = "list_dotfiles",
    tag = "dotfiles",
    summary = "My dotfiles, ordered by path",
    responses((status = 200, description = "OK", body = Vec<api::dotfiles::Dotfile>))
)]
pub(crate) async fn list_own(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Json<Vec<Dotfile>>> {
    list(&state, own(&user)).await
}

#[utoipa::path(
    put,
    path = "/dotfiles",
    operation_id = "put_dotfile",
    tag = "dotfiles",
    summary = "Create or replace one of my dotfiles (home-relative paths only)",
    request_body = api::dotfiles::PutDotfile,
    responses((status = 201, description = "Created", body = api::dotfiles::Dotfile), (status = 200, description = "Replaced", body = api::dotfiles::Dotfile), (status = 409, response = crate::openapi::Conflict))
)]
pub(crate) async fn put_own(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<PutDotfile>,
) -> AppResult<(StatusCode, Json<Dotfile>)> {
    put(&state, own(&user), req).await
}

#[utoipa::path(
    delete,
    path = "/dotfiles",
    operation_id = "delete_dotfile",
    tag = "dotfiles",
    summary = "Remove one of my dotfiles",
    params(("path" = String, Query, description = "the dotfile's path, such as ~/.bashrc")),
    responses((status = 204, description = "Removed"), (status = 400, response = crate::openapi::BadRequest), (status = 404, response = crate::openapi::NotFound))
)]
pub(crate) async fn delete_own(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> AppResult<StatusCode> {
    delete(&state, own(&user), &q.path).await
}

#[utoipa::path(
    get,
    path = "/projects/{id}/dotfiles",
    operation_id = "list_project_dotfiles",
    tag = "dotfiles",
    summary = "A project's dotfiles (admins and its members), ordered by path",
    params(("id" = String, Path, description = "project id or name")),
    responses((status = 200, description = "OK", body = Vec<api::dotfiles::Dotfile>), (status = 404, response = crate::openapi::NotFound))
)]
pub(crate) async fn list_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<Dotfile>>> {
    let owner = project(&state, &user, &id, false).await?;
    list(&state, owner).await
}

#[utoipa::path(
    put,
    path = "/projects/{id}/dotfiles",
    operation_id = "put_project_dotfile",
    tag = "dotfiles",
    summary = "Create or replace a project's dotfile (admins)",
    params(("id" = String, Path, description = "project id or name")),
    request_body = api::dotfiles::PutDotfile,
    responses((status = 201, description = "Created", body = api::dotfiles::Dotfile), (status = 200, description = "Replaced", body = api::dotfiles::Dotfile), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
pub(crate) async fn put_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PutDotfile>,
) -> AppResult<(StatusCode, Json<Dotfile>)> {
    let owner = project(&state, &user, &id, true).await?;
    put(&state, owner, req).await
}

#[utoipa::path(
    delete,
    path = "/projects/{id}/dotfiles",
    operation_id = "delete_project_dotfile",
    tag = "dotfiles",
    summary = "Remove a project's dotfile (admins)",
    params(("id" = String, Path, description = "project id or name"), ("path" = String, Query, description = "the dotfile's path")),
    responses((status = 204, description = "Removed"), (status = 400, response = crate::openapi::BadRequest), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
pub(crate) async fn delete_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> AppResult<StatusCode> {
    let owner = project(&state, &user, &id, true).await?;
    delete(&state, owner, &q.path).await
}

#[utoipa::path(
    get,
    path = "/admin/dotfiles",
    operation_id = "list_domain_dotfiles",
    tag = "dotfiles",
    summary = "The domain's dotfiles, everyone's (admins), ordered by path",
    responses((status = 200, description = "OK", body = Vec<api::dotfiles::Dotfile>), (status = 403, response = crate::openapi::Forbidden))
)]
pub(crate) async fn list_domain(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Json<Vec<Dotfile>>> {
    list(&state, domain(&user)?).await
}

#[utoipa::path(
    put,
    path = "/admin/dotfiles",
    operation_id = "put_domain_dotfile",
    tag = "dotfiles",
    summary = "Create or replace a domain dotfile (admins)",
    request_body = api::dotfiles::PutDotfile,
    responses((status = 201, description = "Created", body = api::dotfiles::Dotfile), (status = 200, description = "Replaced", body = api::dotfiles::Dotfile), (status = 403, response = crate::openapi::Forbidden), (status = 409, response = crate::openapi::Conflict))
)]
pub(crate) async fn put_domain(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<PutDotfile>,
) -> AppResult<(StatusCode, Json<Dotfile>)> {
    put(&state, domain(&user)?, req).await
}

#[utoipa::path(
    delete,
    path = "/admin/dotfiles",
    operation_id = "delete_domain_dotfile",
    tag = "dotfiles",
    summary = "Remove a domain dotfile (admins)",
    params(("path" = String, Query, description = "the dotfile's path")),
    responses((status = 204, description = "Removed"), (status = 400, response = crate::openapi::BadRequest), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
pub(crate) async fn delete_domain(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> AppResult<StatusCode> {
    delete(&state, domain(&user)?, &q.path).await
}
