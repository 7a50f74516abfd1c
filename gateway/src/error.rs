//! One typed error and one mapping to `application/problem+json`. Internal causes are logged,
//! never sent: a 5xx body stays generic.

use api::{FieldError, Problem, ProblemType};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// The largest JSON body any endpoint accepts.
pub const MAX_JSON_BODY: usize = 1 << 20;

#[derive(Debug)]
pub enum AppError {
    /// A problem to show the client as it is.
    Problem(Problem),
    /// Something broke inside; the client sees a generic 500.
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self::Problem(Problem::new(kind, detail))
    }
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::Problem(Problem::validation(errors))
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            ProblemType::NotFound,
            format!("There is no {what} by that name or id."),
        )
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            ProblemType::Unauthenticated,
            "Log in first: this call needs a logged-in user.",
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Forbidden, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Conflict, detail)
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        Self::Internal(e.into())
    }
}

pub fn problem_response(p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(p).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body,
    )
        .into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(p) => problem_response(&p),
            Self::Internal(e) if database_unreachable(&e) => {
                tracing::warn!(error = %format!("{e:#}"), "the database is unreachable");
                problem_response(&Problem::new(
                    ProblemType::Unavailable,
                    "The database cannot be reached just now (it may be restarting); try again in a moment.",
                ))
            }
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                problem_response(&Problem::new(
                    ProblemType::Internal,
                    "Something went wrong inside berth; the error was logged.",
                ))
            }
        }
    }
}

/// Whether an error is the database being out of reach (a restart, a dropped connection, an
/// exhausted wait for one) rather than a fault: that is a 503 to try again, not a 500.
fn database_unreachable(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => true,
            // PostgreSQL's classes 08 (connection exception) and 57P (operator intervention:
            // shutting down, terminated by an administrator, cannot connect now).
            Some(sqlx::Error::Database(d)) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        })
}

/// A JSON body extractor whose every rejection is a problem of the contract: 415 without a
/// JSON content type, 413 past [`MAX_JSON_BODY`], and a 400 naming the field for malformed
/// JSON, wrong types and unknown fields.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || v.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError::new(
                ProblemType::UnsupportedMediaType,
                "Send the request body as JSON with Content-Type: application/json.",
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                AppError::new(
                    ProblemType::TooLarge,
                    "The request body is larger than 1 MiB; send less.",
                )
            })?;
        parse_json(&body).map(ApiJson)
    }
}

/// A query-string extractor whose rejection is a `validation` problem with a sentence
/// (axum's own is plain text naming its internals).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                let why = e.body_text();
                let why = why
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&why)
                    .trim_end_matches('.');
                AppError::field(
                    "query",
                    format!("The query string is not understood: {why}."),
                )
            })
    }
}

/// A websocket upgrade whose rejection (a plain GET, a wrong `Upgrade` or version header) is a
/// `validation` problem like every other error (axum's own is plain text).
pub struct ApiWebSocket(pub axum::extract::WebSocketUpgrade);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiWebSocket {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map(ApiWebSocket)
            .map_err(|e| {
                AppError::new(
                    ProblemType::Validation,
                    format!(
                        "This endpoint is a websocket; connect with an HTTP/1.1 upgrade ({}).",
                        e.body_text().trim_end_matches('.')
                    ),
                )
            })
    }
}

/// Deserialises JSON, turning serde's complaint into a field error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> AppResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde says "unknown field `x`, expected one of …" for deny_unknown_fields.
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or("");
            // The path already ends at the unknown key (serde_path_to_error records it
            // before the struct refuses it), unlike a missing field's path.
            let field = if path == "." || path.is_empty() {
                name.to_string()
            } else if path == name || path.ends_with(&format!(".{name}")) {
                path
            } else {
                format!("{path}.{name}")
            };
            return AppError::field(
                &field,
                format!("Field \"{field}\" is not recognised; remove it."),
            );
        }
        if let Some(rest) = msg.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or("");
            let field = if path == "." || path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            return AppError::field(&field, format!("Field \"{field}\" is required."));
        }
        let field = if path == "." { String::new() } else { path };
        let clean = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        let sentence = if inner.is_syntax() || inner.is_eof() {
            "The request body is not valid JSON.".to_string()
        } else if field.is_empty() {
            format!("The request body is not what this call expects: {clean}.")
        } else {
            format!("Field \"{field}\" is wrong: {clean}.")
        };
        AppError::field(&field, sentence)
    })
}
