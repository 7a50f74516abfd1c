//! Resource policies: defaults for everyone plus per-user overrides, in the `policies`
//! table. `GET/PUT /api/v1/users/{id}/policy` (a user reads their own) and
//! `GET/PUT /api/v1/policies/default` (admins). Enforced from it: lifetime and idle
//! timeout (the reaper, `sessions::lifecycle::reaping`), the process limit (`max_processes`, when the
//! container is created), admission (the scheduler), folder count and quota (vfolders).

use crate::auth::{find_user, CurrentUser};
use crate::db::Json as JsonColumn;
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
    // A body that is not a JSON object fails the query: never read as "no settings".
    let row: Option<(JsonColumn<Map<String, Value>>,)> =
        sqlx::query_as("SELECT body FROM policies WHERE scope = $1")
            .bind(scope)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(b,)| b.0).unwrap_or_default())
}

async fn store_map(db: &db::Db, scope: &str, map: &Map<String, Value>) -> AppResult<()> {
    sqlx::query("INSERT INTO policies(scope, body) VALUES ($1, $2) ON CONFLICT(scope) DO UPDATE SET body = excluded.body")
        .bind(scope)
        .bind(JsonColumn(map))
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

#[utoipa::path(
    get,
    path = "/users/{id}/policy",
    operation_id = "get_user_policy",
    tag = "policies",
    summary = "A user's effective policy (admins, or the user)",
    params(("id" = String, Path, description = "user id or username")),
    responses((status = 200, description = "OK", body = api::policy::UserPolicy), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
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
#[utoipa::path(
    put,
    path = "/users/{id}/policy",
    operation_id = "put_user_policy",
    tag = "policies",
    summary = "Replace a user's overrides (admins); keys left out follow the defaults",
    params(("id" = String, Path, description = "user id or username")),
    request_body(content = api::policy::Policy, description = "Overrides: any keys of Policy; null is unlimited"),
    responses((status = 200, description = "OK", body = api::policy::UserPolicy), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
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

#[utoipa::path(
    get,
    path = "/policies/default",
    operation_id = "get_default_policy",
    tag = "policies",
    summary = "The default policy (admins)",
    responses((status = 200, description = "OK", body = api::policy::Policy), (status = 403, response = crate::openapi::Forbidden))
)]
async fn get_default(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Policy>> {
    user.require_admin()?;
    Ok(Json(defaults(&state.db).await?))
}

/// Replaces the defaults; keys left out take berth's built-in values ([`Policy::builtin`]),
/// `null` means unlimited.
#[utoipa::path(
    put,
    path = "/policies/default",
    operation_id = "put_default_policy",
    tag = "policies",
    summary = "Replace the default policy (admins); keys left out take the built-in defaults, null is unlimited",
    request_body(content = api::policy::Policy, description = "Any keys of Policy"),
    responses((status = 200, description = "OK", body = api::policy::Policy), (status = 403, response = crate::openapi::Forbidden))
)]
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

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_stored_policy_that_is_not_an_object_is_an_error_not_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        let mut map = serde_json::Map::new();
        map.insert("max_vfolders".into(), 3.into());
        super::store_map(&db, "default", &map).await.unwrap();
        assert_eq!(super::load_map(&db, "default").await.unwrap(), map);
        assert!(super::load_map(&db, "nobody").await.unwrap().is_empty());
        for corrupt in ["{\"max_vfolders\": 3", "[1, 2]", ""] {
            sqlx::query("UPDATE policies SET body = $1 WHERE scope = 'default'")
                .bind(corrupt)
                .execute(&db)
                .await
                .unwrap();
            assert!(
                super::load_map(&db, "default").await.is_err(),
                "{corrupt:?}"
            );
            assert!(super::defaults(&db).await.is_err(), "{corrupt:?}");
        }
    }
}
