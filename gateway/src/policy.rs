//! Resource policies: defaults for everyone plus per-user overrides, in the `policies`
//! table. `GET/PUT /api/v1/users/{id}/policy` (a user reads their own) and
//! `GET/PUT /api/v1/policies/default` (admins). Enforced from it: lifetime and idle
//! timeout (`sessions::lifecycle`'s reaper), the process limit (`max_processes`, when the
//! container is created), admission (the scheduler), folder count and quota (vfolders).

use crate::auth::{find_user, CurrentUser};
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::policy::{parse_policy_map, Policy, UserPolicy};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/users/{id}/policy",
            get(get_user_policy).put(put_user_policy),
        )
        .route("/policies/default", get(get_default).put(put_default))
}

async fn load_map(db: &db::Db, scope: &str) -> AppResult<Map<String, Value>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT body FROM policies WHERE scope = ?")
        .bind(scope)
        .fetch_optional(db)
        .await?;
    Ok(row
        .and_then(|(b,)| serde_json::from_str(&b).ok())
        .unwrap_or_default())
}

async fn store_map(db: &db::Db, scope: &str, map: &Map<String, Value>) -> AppResult<()> {
    sqlx::query("INSERT INTO policies(scope, body) VALUES (?, ?) ON CONFLICT(scope) DO UPDATE SET body = excluded.body")
        .bind(scope)
        .bind(serde_json::to_string(map)?)
        .execute(db)
        .await?;
    Ok(())
}

/// The default policy: berth's built-in one ([`Policy::builtin`]) with the administrator's
/// settings laid over it (`null` there means unlimited).
pub async fn defaults(db: &db::Db) -> AppResult<Policy> {
    Ok(Policy::builtin().with_overrides(&load_map(db, "default").await?))
}

/// The policy in force for a user.
pub async fn effective(db: &db::Db, user_id: &str) -> AppResult<UserPolicy> {
    let base = defaults(db).await?;
    let over = load_map(db, user_id).await?;
    Ok(UserPolicy {
        policy: base.with_overrides(&over),
        overridden: over.keys().cloned().collect(),
    })
}

async fn get_user_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<UserPolicy>> {
    let own = id == user.id || id == user.username;
    if !own {
        user.require_admin()?;
    }
    let target = find_user(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok(Json(effective(&state.db, &target.id).await?))
}

/// Replaces a user's overrides: keys present override the defaults (`null` = unlimited);
/// keys left out follow the defaults.
async fn put_user_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> AppResult<Json<UserPolicy>> {
    user.require_admin()?;
    let target = find_user(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let map = parse_policy_map(&body).map_err(AppError::validation)?;
    store_map(&state.db, &target.id, &map).await?;
    // The next scheduling pass runs now, with the new limits.
    state.lifecycle.wake();
    Ok(Json(effective(&state.db, &target.id).await?))
}

async fn get_default(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Policy>> {
    user.require_admin()?;
    Ok(Json(defaults(&state.db).await?))
}

/// Replaces the defaults; keys left out take berth's built-in values ([`Policy::builtin`]),
/// `null` means unlimited.
async fn put_default(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> AppResult<Json<Policy>> {
    user.require_admin()?;
    let map = parse_policy_map(&body).map_err(AppError::validation)?;
    store_map(&state.db, "default", &map).await?;
    state.lifecycle.wake();
    Ok(Json(defaults(&state.db).await?))
}
