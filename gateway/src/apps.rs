//! Apps of sessions: `POST /api/v1/sessions/{id}/apps/{app}` hands the owner a one-use link
//! to the app's own origin, `GET /api/v1/sessions/{id}/tunnel/{app}` is a TCP app's byte
//! stream over a websocket (for `berth app … --bind`), and [`dispatch`] sends every request
//! for an app host (`APP--SESSIONID.BASE_DOMAIN`) to the proxy before any console route.

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::sessions::store;
use crate::AppState;
use api::images::AppUrl;
use api::session::SessionStatus;
use axum::extract::{Path, Request, State, WebSocketUpgrade};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use wsproxy::{AppResolver, AppTarget};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions/{id}/apps/{app}", post(open_app))
        .route("/sessions/{id}/tunnel/{app}", get(tunnel))
        .route("/sessions/{id}/apps/{app}/token", get(app_token))
}

/// Answers the proxy from the database: apps of RUNNING sessions with a published port.
pub struct DbApps(pub crate::db::Db);

#[async_trait::async_trait]
impl AppResolver for DbApps {
    async fn resolve(&self, session_id: &str, app: &str) -> Option<AppTarget> {
        let row = store::get(&self.0, session_id).await.ok()??;
        if row.status() != SessionStatus::Running {
            return None;
        }
        let a = row.apps().into_iter().find(|a| a.name == app)?;
        Some(AppTarget {
            owner_id: row.owner_id.clone(),
            protocol: a.protocol,
            addr: a.host?,
            secret: row.app_secret.clone().unwrap_or_default(),
        })
    }
}

/// Sends requests for app hosts to the app proxy; everything else goes on to the console.
pub async fn dispatch(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if state.apps.parse_host(host).is_some() {
        return state.apps.handle(req, state.public_url()).await;
    }
    next.run(req).await
}

/// The owner's RUNNING session and one of its apps, or the sentence why not.
async fn owned_app(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    app: &str,
) -> AppResult<(store::SessionRow, store::AppPort)> {
    let row = crate::sessions::owned(state, user, id).await?;
    let Some(a) = row.apps().into_iter().find(|a| a.name == app) else {
        return Err(AppError::new(
            api::ProblemType::NotFound,
            format!("The session has no app named \"{}\".", app.escape_default()),
        ));
    };
    if row.status() != SessionStatus::Running {
        return Err(AppError::conflict(format!(
            "The session is {}, not RUNNING; its apps open once it runs.",
            row.status()
        )));
    }
    if a.host.is_none() {
        return Err(AppError::conflict(format!(
            "App {} runs on node {}, whose ports this gateway cannot reach (a remote engine); apps there need a berth wsproxy beside the node.",
            a.name,
            row.node.as_deref().unwrap_or("(none)")
        )));
    }
    Ok((row, a))
}

async fn open_app(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
) -> AppResult<Json<AppUrl>> {
    let (row, a) = owned_app(&state, &user, &id, &app).await?;
    if a.protocol == "tcp" {
        return Err(AppError::conflict(format!(
            "{app} is a TCP app; reach it with `berth app {} {app} --bind 127.0.0.1:PORT`.",
            row.name
        )));
    }
    let url = state
        .apps
        .link(&row.id, &app, user.access(&state), state.public_url())
        .await
        .map_err(AppError::conflict)?;
    Ok(Json(AppUrl { url }))
}

/// The app's own token (JupyterLab's), for the owner using the app through `berth app`,
/// where no proxy adds it. Served on the console's origin only, like every API call.
async fn app_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
) -> AppResult<Json<serde_json::Value>> {
    let (row, _) = owned_app(&state, &user, &id, &app).await?;
    Ok(Json(
        serde_json::json!({ "token": row.app_secret.unwrap_or_default() }),
    ))
}

async fn tunnel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
    ws: WebSocketUpgrade,
) -> AppResult<Response> {
    let (_, a) = owned_app(&state, &user, &id, &app).await?;
    let addr = a
        .host
        .ok_or_else(|| AppError::conflict("The app's port is not published."))?;
    let access = user.access(&state);
    Ok(ws.on_upgrade(move |socket| wsproxy::apps::tunnel(socket, addr, access)))
}
