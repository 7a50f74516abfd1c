//! API keys: `POST/GET /api/v1/keys`, `DELETE /api/v1/keys/{id}`, and the Bearer lookup.
//! A key is `berth_` + 40 hex digits; only its SHA-256 is stored, with a short prefix to
//! recognise it in lists.

use super::{sha256_hex, CurrentUser, UserRow};
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::auth::{validate_key_name, ApiKey, CreateKey, CreatedKey};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

const KEY_PREFIX: &str = "berth_";
/// How often `last_used_at` is written for a busy key.
const LAST_USED_EVERY_SECS: i64 = 60;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list).post(create))
        .route("/keys/{id}", delete(revoke))
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
}

fn new_secret() -> String {
    format!("{KEY_PREFIX}{}", wsproxy::secret::random_hex(20))
}

#[utoipa::path(
    post,
    path = "/keys",
    operation_id = "create_key",
    tag = "keys",
    summary = "Create an API key; the secret is shown once",
    request_body = api::auth::CreateKey,
    responses((status = 201, description = "Created; `key` is the secret", body = api::auth::CreatedKey))
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateKey>,
) -> AppResult<(StatusCode, Json<CreatedKey>)> {
    validate_key_name(&req.name).map_err(|m| AppError::field("name", m))?;
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(&user.id)
            .fetch_one(&state.db)
            .await?;
    if count >= 100 {
        return Err(AppError::conflict(
            "You have 100 API keys already; revoke some before creating more.",
        ));
    }
    let key = new_secret();
    let created = CreatedKey {
        id: uuid::Uuid::new_v4().to_string(),
        name: req.name.trim().to_string(),
        prefix: key[..KEY_PREFIX.len() + 6].to_string(),
        key,
        created_at: db::now(),
    };
    sqlx::query(
        "INSERT INTO api_keys(id, user_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&created.id)
    .bind(&user.id)
    .bind(&created.name)
    .bind(&created.prefix)
    .bind(sha256_hex(&created.key))
    .bind(&created.created_at)
    .execute(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/keys",
    operation_id = "list_keys",
    tag = "keys",
    summary = "My API keys (never the secrets)",
    responses((status = 200, description = "OK", body = Vec<api::auth::ApiKey>))
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<ApiKey>>> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT id, name, prefix, created_at, last_used_at FROM api_keys
         WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC",
    )
    .bind(&user.id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ApiKey {
                id: r.id,
                name: r.name,
                prefix: r.prefix,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
            })
            .collect(),
    ))
}

#[utoipa::path(
    delete,
    path = "/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    summary = "Revoke one of my keys",
    params(("id" = String, Path, description = "key id")),
    responses((status = 204, description = "Revoked"), (status = 404, response = crate::openapi::NotFound))
)]
async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let res = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(db::now())
    .bind(&id)
    .bind(&user.id)
    .execute(&state.db)
    .await?;
    if res.rows_affected() == 0 {
        return Err(AppError::not_found("API key"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The user behind a Bearer key, or `None` for an unknown, revoked or malformed key or a
/// disabled user. Notes the use.
pub async fn user_for_key(db: &db::Db, key: &str, since: u64) -> AppResult<Option<CurrentUser>> {
    let ok_shape = key.len() == KEY_PREFIX.len() + 40
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    if !ok_shape {
        return Ok(None);
    }
    let hash = sha256_hex(key);
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT u.* FROM api_keys k JOIN users u ON u.id = k.user_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.disabled = 0",
    )
    .bind(&hash)
    .fetch_optional(db)
    .await?;
    let Some(u) = row else { return Ok(None) };
    let now = db::now();
    let stale = db::now_plus(-LAST_USED_EVERY_SECS);
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(&now)
    .bind(&hash)
    .bind(&stale)
    .execute(db)
    .await?;
    Ok(Some(CurrentUser {
        role: u.role(),
        id: u.id,
        username: u.username,
        via_key: true,
        since,
    }))
}
