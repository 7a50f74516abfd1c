//! `/api/v1/auth/*`, `/api/v1/me` and `/api/v1/users`.

use super::throttle::Verdict;
use super::{password, sha256_hex, CurrentUser, UserRow, COOKIE, LOGIN_TTL_SECS};
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::auth::{
    validate_password, ChangePassword, CreateUser, LoginRequest, Role, UpdateUser, User,
};
use api::ProblemType;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user))
}

/// The `berth_session` cookie carrying `value` (empty with `max_age` 0 to end it):
/// HttpOnly, `SameSite=Lax`, for the whole console, `Secure` behind an https public URL.
fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let mut c = cookie::Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age));
    if state.public_url().starts_with("https://") {
        c = c.secure(true);
    }
    HeaderValue::from_str(&c.build().to_string()).expect("cookie is ASCII")
}

#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "login",
    tag = "auth",
    summary = "Log in; sets the berth_session cookie",
    request_body = api::auth::LoginRequest,
    security(()),
    responses((status = 200, description = "The user; the `berth_session` cookie is set", body = api::auth::User), (status = 401, response = crate::openapi::Unauthenticated), (status = 429, response = crate::openapi::TooManyRequests), (status = 503, response = crate::openapi::Unavailable))
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Response> {
    let bad = || {
        AppError::new(
            ProblemType::Unauthenticated,
            "The username or password is wrong.",
        )
    };
    let username = req.username.trim().to_string();
    if username.len() > 64 || req.password.0.len() > api::auth::MAX_PASSWORD_LEN {
        return Err(bad());
    }
    let addr = peer.ip().to_string();
    // Counted now, before the password is checked: parallel attempts see each other.
    match state.throttle.begin(&username, &addr).await? {
        Verdict::Locked(secs) => {
            return Err(AppError::new(
                ProblemType::TooManyRequests,
                format!(
                    "Too many failed logins; try again in {} minute(s).",
                    secs.div_ceil(60)
                ),
            ))
        }
        Verdict::Proceed(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Proceed(_) => {}
    }
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE username = $1")
        .bind(&username)
        .fetch_optional(&state.db)
        .await?;
    let ok = match password::verify(
        req.password.0.clone(),
        row.as_ref().map(|r| r.password_hash.clone()),
    )
    .await
    {
        Ok(ok) => ok,
        Err(busy) => {
            state.throttle.abandoned(&username, &addr).await?;
            return Err(busy);
        }
    };
    let Some(user) = row.filter(|_| ok) else {
        return Err(bad());
    };
    state.throttle.succeeded(&username, &addr).await?;
    if user.disabled {
        return Err(AppError::new(
            ProblemType::Unauthenticated,
            "This account is disabled; ask an administrator.",
        ));
    }
    let token = new_login(&state.db, &user.id).await?;
    let mut resp = Json(user.to_api()).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, &token, LOGIN_TTL_SECS),
    );
    Ok(resp)
}

/// Records a new login of `user_id`; returns its cookie token.
async fn new_login<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
) -> AppResult<String> {
    let token = wsproxy::secret::random_hex(wsproxy::secret::TOKEN_BYTES);
    sqlx::query("INSERT INTO auth_sessions(token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(db::now())
        .bind(db::now_plus(LOGIN_TTL_SECS))
        .execute(db)
        .await?;
    Ok(token)
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "logout",
    tag = "auth",
    summary = "End the login session (the cookie's); idempotent",
    security(()),
    responses((status = 204, description = "Logged out; the cookie is cleared"))
)]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some(token) = super::cookie_value(&headers, COOKIE) {
        sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
            .bind(sha256_hex(&token))
            .execute(&state.db)
            .await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(resp)
}

#[utoipa::path(
    get,
    path = "/me",
    operation_id = "me",
    tag = "auth",
    summary = "The logged-in user",
    responses((status = 200, description = "OK", body = api::auth::User))
)]
async fn me(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<User>> {
    let row: UserRow = sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(&user.id)
        .fetch_one(&state.db)
        .await?;
    Ok(Json(row.to_api()))
}

#[utoipa::path(
    get,
    path = "/users",
    operation_id = "list_users",
    tag = "users",
    summary = "List users (admins)",
    responses((status = 200, description = "OK", body = Vec<api::auth::User>), (status = 403, response = crate::openapi::Forbidden))
)]
async fn list_users(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Json<Vec<User>>> {
    user.require_admin()?;
    let rows: Vec<UserRow> = sqlx::query_as("SELECT * FROM users ORDER BY username")
        .fetch_all(&state.db)
        .await?;
    Ok(Json(rows.iter().map(UserRow::to_api).collect()))
}

/// A user named by id or username.
pub async fn find_user(db: &crate::db::Db, id_or_name: &str) -> AppResult<Option<UserRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM users WHERE id = $1 OR username = $2")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_optional(db)
            .await?,
    )
}

#[utoipa::path(
    get,
    path = "/users/{id}",
    operation_id = "get_user",
    tag = "users",
    summary = "One user (admins, or yourself)",
    params(("id" = String, Path, description = "user id or username")),
    responses((status = 200, description = "OK", body = api::auth::User), (status = 404, response = crate::openapi::NotFound))
)]
async fn get_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<User>> {
    if id != user.id && id != user.username {
        user.require_admin()?;
    }
    let row = find_user(&state.db, &id).await?;
    row.map(|r| Json(r.to_api()))
        .ok_or_else(|| AppError::not_found("user"))
}

#[utoipa::path(
    patch,
    path = "/users/{id}",
    operation_id = "update_user",
    tag = "users",
    summary = "Change a user's role, disabled flag or password (admins)",
    params(("id" = String, Path, description = "user id or username")),
    request_body = api::auth::UpdateUser,
    responses((status = 200, description = "OK", body = api::auth::User), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable))
)]
async fn update_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> AppResult<Json<User>> {
    user.require_admin()?;
    let role = req.validate().map_err(AppError::validation)?;
    let target = find_user(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if role.is_some_and(|r| r > user.role) {
        return Err(AppError::forbidden(
            "You cannot raise anyone above your own role.",
        ));
    }
    // Admins are trusted with users, not with other administrators' accounts.
    if target.id != user.id && target.role().is_admin() && user.role != Role::Superadmin {
        return Err(AppError::forbidden(format!(
            "Only a superadmin may change the password, role or state of another administrator ({}).",
            target.username
        )));
    }
    if target.id == user.id && (req.disabled == Some(true) || role.is_some_and(|r| r < user.role)) {
        return Err(AppError::conflict(
            "You cannot disable or demote your own account; ask another administrator.",
        ));
    }
    let hash = match &req.password {
        Some(p) => Some(password::hash(p.0.clone()).await?),
        None => None,
    };
    let disabling = req.disabled == Some(true) && !target.disabled;
    let role_changed = role.is_some_and(|r| r != target.role());
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE users SET role = COALESCE($1, role), disabled = COALESCE($2, disabled),
                          password_hash = COALESCE($3, password_hash) WHERE id = $4",
    )
    .bind(role.map(|r| r.as_str()))
    .bind(req.disabled.map(i64::from))
    .bind(&hash)
    .bind(&target.id)
    .execute(&mut *tx)
    .await?;
    // A disabled user, or one whose password was reset, is logged out everywhere at once.
    if req.disabled == Some(true) || hash.is_some() {
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(&target.id)
            .execute(&mut *tx)
            .await?;
    }
    // Disabling revokes the keys for good: enabling the account again does not bring back
    // credentials that may have leaked meanwhile.
    if req.disabled == Some(true) {
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(db::now())
        .bind(&target.id)
        .execute(&mut *tx)
        .await?;
    }
    let revoking = req.disabled == Some(true) || hash.is_some() || role_changed;
    if revoking {
        state.record_revocation(&mut tx, &target.id).await?;
    }
    tx.commit().await?;
    // After the commit: live terminals, tunnels, app logins and event streams end now (a
    // role change too, so event streams reopen with the new rights).
    if revoking {
        state.revoke(&target.id);
    }
    if disabling {
        let reason = format!(
            "Cancelled: the owner's account was disabled by {} before the session was scheduled.",
            user.username
        );
        state
            .lifecycle
            .cancel_pending_of(&target.id, &reason)
            .await?;
    }
    let row = find_user(&state.db, &target.id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok(Json(row.to_api()))
}

#[utoipa::path(
    post,
    path = "/me/password",
    operation_id = "change_password",
    tag = "auth",
    summary = "Change my password",
    request_body = api::auth::ChangePassword,
    responses((status = 204, description = "Changed; other logins and connections end"), (status = 503, response = crate::openapi::Unavailable))
)]
async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<ChangePassword>,
) -> AppResult<Response> {
    validate_password(&req.new_password.0).map_err(|m| AppError::field("new_password", m))?;
    let row: UserRow = sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(&user.id)
        .fetch_one(&state.db)
        .await?;
    if !password::verify(req.current_password.0.clone(), Some(row.password_hash)).await? {
        return Err(AppError::field(
            "current_password",
            "The current password is wrong.",
        ));
    }
    let hash = password::hash(req.new_password.0.clone()).await?;
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(&hash)
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    // Every login of this user ends, this one included; a browser that changed it by cookie
    // gets a fresh login in its place, so a stolen copy of its old cookie opens nothing.
    sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    let token = match user.via_key {
        false => Some(new_login(&mut *tx, &user.id).await?),
        true => None,
    };
    state.record_revocation(&mut tx, &user.id).await?;
    tx.commit().await?;
    // Live terminals, tunnels, app logins and event streams opened before end too.
    state.revoke(&user.id);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(token) = token {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            session_cookie(&state, &token, LOGIN_TTL_SECS),
        );
    }
    Ok(resp)
}

#[utoipa::path(
    post,
    path = "/users",
    operation_id = "create_user",
    tag = "users",
    summary = "Create a user (admins)",
    request_body = api::auth::CreateUser,
    responses((status = 201, description = "Created", body = api::auth::User), (status = 403, response = crate::openapi::Forbidden), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable))
)]
async fn create_user(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateUser>,
) -> AppResult<(StatusCode, Json<User>)> {
    user.require_admin()?;
    let role = req.validate().map_err(AppError::validation)?;
    if role > user.role {
        return Err(AppError::forbidden(
            "You cannot create a user with a higher role than your own.",
        ));
    }
    let row = super::create_user(&state.db, &req.username, &req.password.0, role).await?;
    Ok((StatusCode::CREATED, Json(row.to_api())))
}
