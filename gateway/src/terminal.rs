//! `GET /api/v1/terminals/{handle}?secret=…`: the websocket end of a terminal handle. The
//! handle's secret authorises it; a cookie that names another user is refused all the same.

use crate::auth::optional_user;
use crate::error::{ApiQuery, ApiWebSocket};
use crate::error::{AppError, AppResult};
use crate::AppState;
use api::terminal::MAX_FRAME_BYTES;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/terminals/{id}", get(connect))
}

#[derive(Deserialize)]
struct Secret {
    secret: Option<String>,
    /// Output bytes a reconnecting client has already shown.
    offset: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/terminals/{id}",
    operation_id = "connect_terminal",
    tag = "terminals",
    summary = "Terminal websocket: binary frames are terminal bytes, text frames JSON control",
    params(("id" = String, Path, description = "terminal handle"), ("secret" = Option<String>, Query, description = "the handle's secret (or the Sec-WebSocket-Protocol `berth.SECRET`)"), ("offset" = Option<u64>, Query, description = "output bytes a reconnecting client has already shown")),
    security(()),
    responses((status = 101, description = "Switching to a websocket"), (status = 400, response = crate::openapi::BadRequest), (status = 404, response = crate::openapi::NotFound))
)]
async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Secret>,
    headers: HeaderMap,
    ApiWebSocket(ws): ApiWebSocket,
) -> AppResult<Response> {
    let missing = || {
        AppError::new(
            api::ProblemType::NotFound,
            "There is no open terminal with that address.",
        )
    };
    let user = optional_user(&state, &headers).await?;
    let secret = q.secret.unwrap_or_default();
    let auth = state
        .terminals
        .authorize(&id, &secret, user.as_ref().map(|u| u.id.as_str()))
        .ok_or_else(missing)?;
    let hub = state.terminals.clone();
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| hub.serve(auth, socket, q.offset)))
}
