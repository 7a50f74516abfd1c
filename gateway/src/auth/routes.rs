//! `/api/v1/auth/*`, `/api/v1/me` and `/api/v1/users`.

use super::{password, sha256_hex, CurrentUser, UserRow, COOKIE, LOGIN_TTL_SECS};
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::auth::{CreateUser, LoginRequest, User};
use api::ProblemType;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user))
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
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Response> {
    let bad = || {
        AppError::new(
            ProblemType::Unauthenticated,
            "The username or password is wrong.",
        )
    };
    if req.username.len() > 64 || req.password.0.len() > api::auth::MAX_PASSWORD_LEN {
        return Err(bad());
    }
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE username = ?")
        .bind(req.username.trim())
        .fetch_optional(&state.db)
        .await?;
    let ok = password::verify(
        req.password.0.clone(),
        row.as_ref().map(|r| r.password_hash.clone()),
    )
    .await;
    let Some(user) = row.filter(|_| ok) else {
        return Err(bad());
    };
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

async fn get_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<User>> {
    if id != user.id {
        user.require_admin()?;
    }
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = ?")
        .bind(&id)
        .fetch_optional(&state.db)
        .await?;
    row.map(|r| Json(r.to_api()))
        .ok_or_else(|| AppError::not_found("user"))
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
