//! Apps of sessions: `POST /api/v1/sessions/{id}/apps/{app}` hands the owner a one-use link
//! to the app's own origin, `GET /api/v1/sessions/{id}/tunnel/{app}` is a TCP app's byte
//! stream over a websocket (for `berth app … --bind`), `POST /api/v1/sessions/{id}/tunnel/{app}`
//! says where to open one such websocket (this gateway, or the session node's own proxy with
//! a one-use token: `berth app` asks before each connection),
//! `GET /api/v1/sessions/{id}/apps/{app}/token` gives the owner the app's own token
//! (JupyterLab's, for use through a tunnel, where no proxy adds it), and [`dispatch`] sends
//! every request for an app host (`APP--SESSIONID.BASE_DOMAIN`) to the proxy before any
//! console route.

use crate::auth::CurrentUser;
use crate::error::ApiWebSocket;
use crate::error::{AppError, AppResult};
use crate::nodes::proxy::NodeProxy;
use crate::sessions::store;
use crate::AppState;
use api::images::{AppToken, AppUrl};
use api::session::SessionStatus;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use wsproxy::{AppResolver, AppTarget};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions/{id}/apps/{app}", post(open_app))
        .route("/sessions/{id}/tunnel/{app}", get(tunnel).post(tunnel_url))
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
        // berth's SSH server is reached through the tunnel only, never as an HTTP app.
        let a = row
            .apps()
            .into_iter()
            .find(|a| a.name == app && !crate::ssh::session::is_ssh_app(a))?;
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

/// The owner's RUNNING session, one of its apps and the proxy of its node (when it has one
/// of its own), or the sentence why not.
async fn owned_app(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    app: &str,
) -> AppResult<(store::SessionRow, store::AppPort, Option<NodeProxy>)> {
    let row = crate::sessions::owned(state, user, id).await?;
    if app == api::ssh::SSH_APP && !crate::ssh::session::has_ssh(&row) {
        return Err(AppError::conflict(format!(
            "Session {} has no SSH server: berth sets one up in interactive sessions launched since SSH came to berth.",
            row.name
        )));
    }
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
    let proxy = crate::nodes::proxy::of_session(state, &row).await?;
    if a.host.is_none() && proxy.is_none() {
        return Err(AppError::conflict(format!(
            "App {} runs on node {}, whose ports this gateway cannot reach (a remote engine); apps there need a berth wsproxy beside the node (`berth node add … --proxy-url`).",
            a.name,
            row.node.as_deref().unwrap_or("(none)")
        )));
    }
    Ok((row, a, proxy))
}

#[utoipa::path(
    post,
    path = "/sessions/{id}/apps/{app}",
    operation_id = "open_app",
    tag = "apps",
    summary = "A one-use link that opens an HTTP app on its own origin (owner only); for a session on a node with its own proxy, a link on that proxy (`/__berth/open?token=…`) that it spends and redirects to the app's origin",
    params(("id" = String, Path, description = "session id"), ("app" = String, Path, description = "the app's name, as the image declares it")),
    responses((status = 200, description = "OK", body = api::images::AppUrl), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn open_app(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
) -> AppResult<Json<AppUrl>> {
    let (row, a, proxy) = owned_app(&state, &user, &id, &app).await?;
    if crate::ssh::session::is_ssh_app(&a) {
        return Err(AppError::conflict(format!(
            "SSH is no web app; reach it with `berth ssh {}` (or `berth ssh-config`).",
            row.name
        )));
    }
    if a.protocol == "tcp" {
        return Err(AppError::conflict(format!(
            "{app} is a TCP app; reach it with `berth app {} {app} --bind 127.0.0.1:PORT`.",
            row.name
        )));
    }
    if let Some(p) = proxy {
        let url = p.app_url(&row, &a, &user.access(&state))?;
        return Ok(Json(AppUrl { url }));
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
#[utoipa::path(
    get,
    path = "/sessions/{id}/apps/{app}/token",
    operation_id = "app_token",
    tag = "apps",
    summary = "The app's own token, for use through `berth app` (owner only)",
    params(("id" = String, Path, description = "session id"), ("app" = String, Path, description = "the app's name, as the image declares it")),
    responses((status = 200, description = "OK", body = api::images::AppToken), (status = 404, response = crate::openapi::NotFound))
)]
async fn app_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
) -> AppResult<Json<AppToken>> {
    let (row, _, _) = owned_app(&state, &user, &id, &app).await?;
    Ok(Json(AppToken {
        token: row.app_secret.unwrap_or_default(),
    }))
}

#[utoipa::path(
    get,
    path = "/sessions/{id}/tunnel/{app}",
    operation_id = "app_tunnel",
    tag = "apps",
    summary = "Websocket: a TCP app's byte stream, one websocket per TCP connection (owner only)",
    params(("id" = String, Path, description = "session id"), ("app" = String, Path, description = "the app's name, as the image declares it")),
    responses((status = 101, description = "Switching to a websocket: binary frames carry bytes; an empty binary frame ends one direction"), (status = 400, response = crate::openapi::BadRequest), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn tunnel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
    ApiWebSocket(ws): ApiWebSocket,
) -> AppResult<Response> {
    let (row, a, proxy) = owned_app(&state, &user, &id, &app).await?;
    if proxy.is_some() {
        return Err(AppError::conflict(format!(
            "Session {} runs on node {}, whose own proxy serves its tunnels: POST to this address for a tunnel URL.",
            row.name,
            row.node.as_deref().unwrap_or("(none)")
        )));
    }
    let addr = a
        .host
        .ok_or_else(|| AppError::conflict("The app's port is not published."))?;
    if crate::ssh::session::is_ssh_app(&a) {
        crate::ssh::session::ensure_listening(&state, &row, addr).await?;
    }
    let access = user.access(&state);
    // The tunnel's bytes keep the session from being ended as idle.
    let toucher = state.apps.toucher(&id);
    let open = state.apps.observer().clone();
    Ok(ws.on_upgrade(move |socket| async move {
        let _open = open.open(wsproxy::observe::SocketKind::Tunnel);
        wsproxy::apps::tunnel(socket, addr, access, toucher).await
    }))
}

/// Where `berth app --bind` opens the websocket of one TCP connection: this gateway's own
/// tunnel endpoint (the client adds its credential), or the session node's proxy with a
/// one-use token in the URL (the client sends no credential there).
#[utoipa::path(
    post,
    path = "/sessions/{id}/tunnel/{app}",
    operation_id = "tunnel_url",
    tag = "apps",
    summary = "Where to open one tunnel websocket: this gateway's GET endpoint, or the node's own proxy with a one-use token (owner only)",
    params(("id" = String, Path, description = "session id"), ("app" = String, Path, description = "the app's name, as the image declares it")),
    responses((status = 200, description = "OK: `url` is a ws:// or wss:// URL; send the API key only when it is on this gateway", body = api::images::AppUrl), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn tunnel_url(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, app)): Path<(String, String)>,
) -> AppResult<Json<AppUrl>> {
    let (row, a, proxy) = owned_app(&state, &user, &id, &app).await?;
    if let (true, Some(e)) = (crate::ssh::session::is_ssh_app(&a), &row.ssh_error) {
        return Err(AppError::conflict(e.clone()));
    }
    let url = match proxy {
        Some(p) => p.tunnel_url(&row, &a, &user.access(&state))?,
        None => format!(
            "{}/api/v1/sessions/{}/tunnel/{}",
            state.public_url().replacen("http", "ws", 1),
            row.id,
            a.name
        ),
    };
    Ok(Json(AppUrl { url }))
}
