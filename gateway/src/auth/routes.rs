//! `/api/v1/auth/*`, `/api/v1/me` and `/api/v1/users`.

use super::throttle::Verdict;
use super::{password, sha256_hex, CurrentUser, UserRow, COOKIE, LOGIN_TTL_SECS};
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::auth::{validate_password, ChangePassword, CreateUser, LoginRequest, UpdateUser, User};
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

fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie is ASCII")
}

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
    match state.throttle.check(&username, &addr) {
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
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE username = ?")
        .bind(&username)
        .fetch_optional(&state.db)
        .await?;
    let ok = password::verify(
        req.password.0.clone(),
        row.as_ref().map(|r| r.password_hash.clone()),
    )
    .await;
    let Some(user) = row.filter(|_| ok) else {
        state.throttle.failed(&username, &addr);
        return Err(bad());
    };
    state.throttle.succeeded(&username);
    if user.disabled {
        return Err(AppError::new(
            ProblemType::Unauthenticated,
            "This account is disabled; ask an administrator.",
        ));
    }
    let token = super::random_token();
    sqlx::query("INSERT INTO auth_sessions(token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
        .bind(sha256_hex(&token))
        .bind(&user.id)
        .bind(db::now())
        .bind(db::now_plus(LOGIN_TTL_SECS))
        .execute(&state.db)
        .await?;
    let mut resp = Json(user.to_api()).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, &token, LOGIN_TTL_SECS),
    );
    Ok(resp)
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some(token) = super::cookie_value(&headers, COOKIE) {
        sqlx::query("DELETE FROM auth_sessions WHERE token_hash = ?")
            .bind(sha256_hex(&token))
            .execute(&state.db)
            .await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(resp)
}

async fn me(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<User>> {
    let row: UserRow = sqlx::query_as("SELECT * FROM users WHERE id = ?")
        .bind(&user.id)
        .fetch_one(&state.db)
        .await?;
    Ok(Json(row.to_api()))
}

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
        sqlx::query_as("SELECT * FROM users WHERE id = ? OR username = ?")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_optional(db)
            .await?,
    )
}

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
    if target.role() > user.role || role.is_some_and(|r| r > user.role) {
        return Err(AppError::forbidden(
            "You cannot change a user with a higher role than yours, nor raise anyone above your own role.",
        ));
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
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE users SET role = COALESCE(?, role), disabled = COALESCE(?, disabled),
                          password_hash = COALESCE(?, password_hash) WHERE id = ?",
    )
    .bind(role.map(|r| r.as_str()))
    .bind(req.disabled)
    .bind(&hash)
    .bind(&target.id)
    .execute(&mut *tx)
    .await?;
    // A disabled user, or one whose password was reset, is logged out everywhere at once.
    if req.disabled == Some(true) || hash.is_some() {
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = ?")
            .bind(&target.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let row = find_user(&state.db, &target.id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok(Json(row.to_api()))
}

async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChangePassword>,
) -> AppResult<StatusCode> {
    validate_password(&req.new_password.0).map_err(|m| AppError::field("new_password", m))?;
    let row: UserRow = sqlx::query_as("SELECT * FROM users WHERE id = ?")
        .bind(&user.id)
        .fetch_one(&state.db)
        .await?;
    if !password::verify(req.current_password.0.clone(), Some(row.password_hash)).await {
        return Err(AppError::field(
            "current_password",
            "The current password is wrong.",
        ));
    }
    let hash = password::hash(req.new_password.0.clone()).await?;
    let keep = super::cookie_value(&headers, COOKIE)
        .map(|t| sha256_hex(&t))
        .unwrap_or_default();
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
        .bind(&hash)
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    // Other logins of this user end; this one stays.
    sqlx::query("DELETE FROM auth_sessions WHERE user_id = ? AND token_hash <> ?")
        .bind(&user.id)
        .bind(&keep)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

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
