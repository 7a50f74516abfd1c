//! Users, password login and the `berth_session` cookie; the `CurrentUser` extractor every
//! authenticated route takes; the cookie CSRF rule (a state-changing request carrying the
//! cookie must come from the console's own origin).
//!
//! Every `CurrentUser` remembers the revocation generation read before its credential was
//! checked ([`CurrentUser::access`]); what a request starts that outlives it (a terminal
//! handle, a tunnel, an app login, an event stream) holds that watch and ends when the user's
//! access is revoked (`routes::update_user`, `routes::change_password` call
//! `wsproxy::Revocations::revoke` after committing). Plain requests need nothing more: each
//! one checks its cookie or key against the database.

pub mod keys;
pub mod password;
pub(crate) mod routes;

pub use routes::find_user;
mod throttle;

pub use throttle::LoginThrottle;

pub fn router() -> axum::Router<AppState> {
    routes::router().merge(keys::router())
}

use crate::error::{AppError, AppResult};
use crate::{db, AppState};
use api::auth::{Role, User};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use sha2::{Digest, Sha256};

pub const COOKIE: &str = "berth_session";
/// How long a login lasts.
pub const LOGIN_TTL_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub disabled: bool,
    pub created_at: String,
}

impl UserRow {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::User)
    }
    pub fn to_api(&self) -> User {
        User {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role(),
            disabled: self.disabled,
            created_at: self.created_at.clone(),
        }
    }
}

/// The logged-in user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    /// Authenticated by an API key rather than the login cookie.
    pub via_key: bool,
    /// The revocation generation read before the credential was checked: what a long-lived
    /// thing made for this request watches ([`CurrentUser::access`]).
    pub since: u64,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }
    /// A watch over this user's access as this request authorised it: long-lived things
    /// (terminal handles, tunnels, app logins, event streams) end when it fires.
    pub fn access(&self, state: &AppState) -> wsproxy::Watch {
        state.revocations.watch(&self.id, self.since)
    }

    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("Only administrators may do this."))
        }
    }
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub use wsproxy::apps::cookie as cookie_value;

/// Looks up the user behind a cookie token; disabled users and expired logins are nobody.
/// `since` is the revocation generation read before this check.
pub async fn user_for_token(
    db: &db::Db,
    token: &str,
    since: u64,
) -> AppResult<Option<CurrentUser>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT u.* FROM auth_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
    )
    .bind(sha256_hex(token))
    .bind(db::now())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|u| CurrentUser {
        role: u.role(),
        id: u.id,
        username: u.username,
        via_key: false,
        since,
    }))
}

/// The `Authorization: Bearer` value of a request, if it has that header at all
/// (`Some("")` for a header in another scheme).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().unwrap_or("");
    Some(
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or("")
            .trim(),
    )
}

/// The user of a request, if any credential identifies one. An `Authorization` header wins
/// over the cookie, and a bad one is an error (401), not anonymity.
pub async fn optional_user(
    state: &AppState,
    headers: &HeaderMap,
) -> AppResult<Option<CurrentUser>> {
    // Read before the database: a revocation committed after this check still reaches
    // whatever this request starts (see `wsproxy::revoke`).
    let since = state.revocations.now();
    if let Some(key) = bearer(headers) {
        return match keys::user_for_key(&state.db, key, since).await? {
            Some(u) => Ok(Some(u)),
            None => Err(AppError::new(
                api::ProblemType::Unauthenticated,
                "The API key is not valid: it is mistyped, revoked, or its user is disabled.",
            )),
        };
    }
    match cookie_value(headers, COOKIE) {
        Some(token) => user_for_token(&state.db, &token, since).await,
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        optional_user(state, &parts.headers)
            .await?
            .ok_or_else(AppError::unauthenticated)
    }
}

/// The cookie CSRF rule: a state-changing request that carries the session cookie and an
/// `Origin` must come from the console's own origin (the public URL, or the host it was
/// sent to). Apps live on sibling origins of the same site, so SameSite alone is not enough.
pub fn check_origin(method: &Method, headers: &HeaderMap, public_origin: &str) -> AppResult<()> {
    // Websocket upgrades are GETs that browsers send cross-origin with cookies and without
    // CORS: they get the same rule as state-changing requests.
    let upgrade = headers.contains_key(header::UPGRADE);
    if !upgrade && matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    // API keys are exempt: a page on another origin cannot attach one.
    if cookie_value(headers, COOKIE).is_none() || headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| !host.is_empty() && o == host);
    if origin == public_origin || same_host {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "This request came from another site's page and was refused; use the berth console.",
        ))
    }
}

/// Creates the first superadmin `admin` when there are no users. Returns the generated
/// password when one was made (printed once by the caller).
pub async fn bootstrap_admin(
    db: &db::Db,
    password: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(db)
        .await?;
    if count > 0 {
        return Ok(None);
    }
    let (pw, generated) = match password {
        Some(p) => (p.to_string(), false),
        None => (wsproxy::secret::random_hex(10), true),
    };
    create_user(db, "admin", &pw, Role::Superadmin)
        .await
        .map_err(|e| match e {
            AppError::Problem(p) => anyhow::anyhow!(p.detail),
            AppError::Internal(e) => e,
        })?;
    Ok(generated.then_some(pw))
}

/// Inserts a user; a taken username is a 409.
pub async fn create_user(db: &db::Db, username: &str, pw: &str, role: Role) -> AppResult<UserRow> {
    let hash = password::hash(pw.to_string()).await?;
    let row = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: username.to_string(),
        password_hash: hash,
        role: role.as_str().to_string(),
        disabled: false,
        created_at: db::now(),
    };
    let res = sqlx::query(
        "INSERT INTO users(id, username, password_hash, role, disabled, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(&row.id)
    .bind(&row.username)
    .bind(&row.password_hash)
    .bind(&row.role)
    .bind(&row.created_at)
    .execute(db)
    .await;
    match res {
        Ok(_) => Ok(row),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::conflict(
            format!("The username \"{username}\" is taken; choose another."),
        )),
        Err(e) => Err(e.into()),
    }
}
