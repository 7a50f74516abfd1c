//! `/api/v1/projects`: projects (groups of users) and their members. Admins manage them; a
//! user lists the projects they belong to.

use crate::auth::{find_user, CurrentUser};
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::projects::{AddMember, CreateProject, Project, ProjectMember};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{id}", get(get_one))
        .route("/projects/{id}/members", post(add_member))
        .route("/projects/{id}/members/{user}", delete(remove_member))
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    description: String,
    created_at: String,
}

async fn load(db: &db::Db, row: ProjectRow) -> AppResult<Project> {
    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.id, u.username FROM project_members m JOIN users u ON u.id = m.user_id
         WHERE m.project_id = $1 ORDER BY u.username",
    )
    .bind(&row.id)
    .fetch_all(db)
    .await?;
    Ok(Project {
        id: row.id,
        name: row.name,
        description: row.description,
        created_at: row.created_at,
        members: members
            .into_iter()
            .map(|(id, username)| ProjectMember { id, username })
            .collect(),
    })
}

/// A project by id or name.
async fn find(db: &db::Db, id_or_name: &str) -> AppResult<Option<ProjectRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM projects WHERE id = $1 OR name = $2")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_optional(db)
            .await?,
    )
}

/// The id of a project `user_id` belongs to, named by id or name.
pub async fn member_project(
    db: &db::Db,
    user_id: &str,
    id_or_name: &str,
) -> AppResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.name FROM projects p JOIN project_members m ON m.project_id = p.id
         WHERE (p.id = $1 OR p.name = $2) AND m.user_id = $3",
    )
    .bind(id_or_name)
    .bind(id_or_name)
    .bind(user_id)
    .fetch_optional(db)
    .await?)
}

#[utoipa::path(
    get,
    path = "/projects",
    operation_id = "list_projects",
    tag = "projects",
    summary = "Projects (all for admins, mine otherwise)",
    responses((status = 200, description = "OK", body = Vec<api::projects::Project>))
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<Project>>> {
    let rows: Vec<ProjectRow> = if user.is_admin() {
        sqlx::query_as("SELECT * FROM projects ORDER BY name")
            .fetch_all(&state.db)
            .await?
    } else {
        sqlx::query_as(
            "SELECT p.* FROM projects p JOIN project_members m ON m.project_id = p.id
             WHERE m.user_id = $1 ORDER BY p.name",
        )
        .bind(&user.id)
        .fetch_all(&state.db)
        .await?
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(load(&state.db, r).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/projects/{id}",
    operation_id = "get_project",
    tag = "projects",
    summary = "One project",
    params(("id" = String, Path, description = "project id or name")),
    responses((status = 200, description = "OK", body = api::projects::Project), (status = 404, response = crate::openapi::NotFound))
)]
async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Project>> {
    let row = find(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("project"))?;
    let project = load(&state.db, row).await?;
    if !user.is_admin() && !project.members.iter().any(|m| m.id == user.id) {
        return Err(AppError::not_found("project"));
    }
    Ok(Json(project))
}

#[utoipa::path(
    post,
    path = "/projects",
    operation_id = "create_project",
    tag = "projects",
    summary = "Create a project (admins)",
    request_body = api::projects::CreateProject,
    responses((status = 201, description = "Created", body = api::projects::Project), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateProject>,
) -> AppResult<(StatusCode, Json<Project>)> {
    user.require_admin()?;
    req.validate().map_err(AppError::validation)?;
    let row = ProjectRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: req.name.clone(),
        description: req.description.clone().unwrap_or_default(),
        created_at: db::now(),
    };
    let res = sqlx::query(
        "INSERT INTO projects(id, name, description, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.created_at)
    .execute(&state.db)
    .await;
    match res {
        Ok(_) => Ok((StatusCode::CREATED, Json(load(&state.db, row).await?))),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::conflict(
            format!("A project named \"{}\" exists already.", req.name),
        )),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    post,
    path = "/projects/{id}/members",
    operation_id = "add_project_member",
    tag = "projects",
    summary = "Add a member (admins)",
    params(("id" = String, Path, description = "project id or name")),
    request_body = api::projects::AddMember,
    responses((status = 200, description = "OK", body = api::projects::Project), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
async fn add_member(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMember>,
) -> AppResult<Json<Project>> {
    user.require_admin()?;
    let project = find(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("project"))?;
    let member = find_user(&state.db, &req.user).await?.ok_or_else(|| {
        AppError::field(
            "user",
            format!("There is no user \"{}\".", req.user.escape_default()),
        )
    })?;
    sqlx::query(
        "INSERT INTO project_members(project_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&project.id)
    .bind(&member.id)
    .execute(&state.db)
    .await?;
    Ok(Json(load(&state.db, project).await?))
}

#[utoipa::path(
    delete,
    path = "/projects/{id}/members/{user}",
    operation_id = "remove_project_member",
    tag = "projects",
    summary = "Remove a member (admins)",
    params(("id" = String, Path, description = "project id or name"), ("user" = String, Path, description = "user id or username")),
    responses((status = 200, description = "OK", body = api::projects::Project), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
async fn remove_member(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, who)): Path<(String, String)>,
) -> AppResult<Json<Project>> {
    user.require_admin()?;
    let project = find(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("project"))?;
    let member = find_user(&state.db, &who)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let res = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
        .bind(&project.id)
        .bind(&member.id)
        .execute(&state.db)
        .await?;
    if res.rows_affected() == 0 {
        return Err(AppError::not_found("project member"));
    }
    Ok(Json(load(&state.db, project).await?))
}
