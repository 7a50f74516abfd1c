//! `/healthz`, `/readyz`, the static web console with the API reference page
//! ([`API_DOCS_PATH`]), and the headers every console and API answer carries
//! ([`console_headers`]).

use crate::error::AppError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::path::Path;
use tower_http::services::{ServeDir, ServeFile};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

async fn ready(State(state): State<AppState>) -> Result<&'static str, AppError> {
    sqlx::query("SELECT 1")
        .execute(&state.db)
        .await
        .map_err(|e| {
            AppError::new(
                api::ProblemType::Unavailable,
                format!("The database does not answer: {e}."),
            )
        })?;
    state
        .lifecycle
        .nodes()
        .get(crate::nodes::LOCAL)
        .ok_or_else(|| {
            AppError::new(
                api::ProblemType::Unavailable,
                "No Docker engine is connected; check that the local engine runs.",
            )
        })?
        .ping()
        .await
        .map_err(|e| AppError::new(api::ProblemType::Unavailable, e.0))?;
    Ok("ready")
}

const NO_CONSOLE: &str = "<!doctype html><meta charset=utf-8><title>berth</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>berth is running</h1>\
<p>The web console is not built. Run <code>scripts/setup.sh</code> to build it.</p></body>";

const NO_API_DOCS: &str = "<!doctype html><meta charset=utf-8><title>berth API reference</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>The API reference page is not built</h1>\
<p>Run <code>scripts/setup.sh</code> to build it. The document itself is at \
<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></body>";

/// Where the browsable API reference lives: a page of the console's build (Swagger UI over
/// `/api/v1/openapi.json`), answered at this path of the API.
pub const API_DOCS_PATH: &str = "/api/v1/docs";

/// Serves the built console; unknown paths get `index.html` (client-side routing). The API
/// reference page ([`API_DOCS_PATH`]) is part of the same build.
pub fn console(dir: &Path) -> Router<AppState> {
    if dir.join("index.html").is_file() {
        let docs = dir.join("api-docs").join("index.html");
        let docs = Router::new().route_service(API_DOCS_PATH, ServeFile::new(docs));
        // Gzip: the WASM bundle is ~1.3 MB raw and a third of that compressed (slow links).
        Router::new()
            .merge(docs)
            .fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))))
            .layer(tower_http::compression::CompressionLayer::new())
    } else {
        Router::new()
            .route(
                API_DOCS_PATH,
                get(|| async { Html(NO_API_DOCS).into_response() }),
            )
            .fallback(|| async { Html(NO_CONSOLE).into_response() })
    }
}

/// Framing protection and no content sniffing on every answer of the console's origin (pages,
/// static files, the API): no other site can frame the console (clickjacking), and a
/// browser never runs a download or JSON as a script or page. App hosts never pass here (the
/// app dispatch answers them first), so apps keep their own framing.
pub async fn console_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
