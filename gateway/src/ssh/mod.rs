//! SSH into sessions. [`keys`](self) here: a user's SSH public keys,
//! `GET/POST /api/v1/me/ssh-keys` and `DELETE /api/v1/me/ssh-keys/{id}` (parsed and checked by
//! `api::ssh::parse_public_key`); a change is written at once into the owner's running
//! sessions ([`session::refresh_owner`]). [`session`]: the `sshd` berth starts in each
//! interactive session — its host key made while the container is prepared, its
//! configuration and authorized keys written into the container and the daemon started as
//! `work` right after RUNNING (off the launch path), and the check the tunnel makes before
//! it splices a connection to it.
//!
//! Invariant: SSH reaches a session only through the authenticated tunnel
//! (`apps::tunnel` with the reserved app `ssh`, owner only), and its `sshd` accepts only the
//! owner's keys: `/etc/berth/ssh/authorized_keys` is root's (the session cannot add a key),
//! rewritten by berth alone; no password, no root.

pub mod session;

use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::ssh::{NewSshKey, SshKey, MAX_SSH_KEYS};
use api::ProblemType;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/ssh-keys", get(list).post(add))
        .route("/me/ssh-keys/{id}", delete(remove))
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    key: String,
    fingerprint: String,
    created_at: String,
}

impl From<KeyRow> for SshKey {
    fn from(r: KeyRow) -> Self {
        SshKey {
            id: r.id,
            name: r.name,
            key: r.key,
            fingerprint: r.fingerprint,
            created_at: r.created_at,
        }
    }
}

/// A user's keys, oldest first.
pub async fn keys_of(db: &db::Db, user_id: &str) -> sqlx::Result<Vec<SshKey>> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT id, name, key, fingerprint, created_at FROM ssh_keys WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(SshKey::from).collect())
}

#[utoipa::path(
    get,
    path = "/me/ssh-keys",
    operation_id = "list_ssh_keys",
    tag = "ssh",
    summary = "My SSH public keys (the ones my sessions' SSH servers accept)",
    responses((status = 200, description = "OK", body = Vec<api::ssh::SshKey>))
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<SshKey>>> {
    Ok(Json(keys_of(&state.db, &user.id).await?))
}

#[utoipa::path(
    post,
    path = "/me/ssh-keys",
    operation_id = "add_ssh_key",
    tag = "ssh",
    summary = "Add an SSH public key; my running sessions accept it at once",
    request_body = api::ssh::NewSshKey,
    responses(
        (status = 201, description = "Added", body = api::ssh::SshKey),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 409, response = crate::openapi::Conflict)
    )
)]
async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<NewSshKey>,
) -> AppResult<(StatusCode, Json<SshKey>)> {
    let parsed = api::ssh::parse_public_key(&req.key).map_err(|m| AppError::field("key", m))?;
    let name = match req.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ if !parsed.comment.trim().is_empty() => parsed.comment.trim().chars().take(64).collect(),
        _ => parsed.algorithm.clone(),
    };
    api::ssh::validate_key_name(&name).map_err(|m| AppError::field("name", m))?;
    let key = SshKey {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        key: parsed.normalized,
        fingerprint: parsed.fingerprint,
        created_at: db::now(),
    };
    let mut tx = state.db.begin().await?;
    // Writing the user's row first serialises this user's concurrent additions, so the count
    // and the duplicate check below hold until the insert commits (READ COMMITTED included).
    sqlx::query("UPDATE users SET id = id WHERE id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    let same: Option<(String,)> =
        sqlx::query_as("SELECT name FROM ssh_keys WHERE user_id = $1 AND fingerprint = $2")
            .bind(&user.id)
            .bind(&key.fingerprint)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((name,)) = same {
        return Err(AppError::conflict(format!(
            "You added this key already, as \"{}\".",
            name.escape_default()
        )));
    }
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ssh_keys WHERE user_id = $1")
        .bind(&user.id)
        .fetch_one(&mut *tx)
        .await?;
    if count as usize >= MAX_SSH_KEYS {
        return Err(AppError::new(
            ProblemType::Quota,
            format!("You have {MAX_SSH_KEYS} SSH keys already; remove one before adding another."),
        ));
    }
    sqlx::query(
        "INSERT INTO ssh_keys(id, user_id, name, key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(&user.id)
    .bind(&key.name)
    .bind(&key.key)
    .bind(&key.fingerprint)
    .bind(&key.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    session::refresh_owner(&state, &user.id).await;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(
    delete,
    path = "/me/ssh-keys/{id}",
    operation_id = "remove_ssh_key",
    tag = "ssh",
    summary = "Remove one of my SSH keys; my running sessions stop accepting it at once",
    params(("id" = String, Path, description = "key id")),
    responses((status = 204, description = "Removed"), (status = 404, response = crate::openapi::NotFound))
)]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let res = sqlx::query("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2")
        .bind(&id)
        .bind(&user.id)
        .execute(&state.db)
        .await?;
    if res.rows_affected() == 0 {
        return Err(AppError::not_found("SSH key"));
    }
    session::refresh_owner(&state, &user.id).await;
    Ok(StatusCode::NO_CONTENT)
}
