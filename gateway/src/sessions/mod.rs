//! `/api/v1/sessions`: create, list, get, terminate, history, logs, terminal handles, and the
//! queue (`/api/v1/scheduler/queue`). [`store`] holds the session rows and their queries;
//! [`lifecycle`] moves sessions from PENDING to their end.

pub mod lifecycle;
pub mod store;

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, AppResult};
use crate::AppState;
use api::images::ImageInfo;
use api::session::{CreateSession, HistoryEntry, Session, TerminalUrl};
use api::{FieldError, ProblemType};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use store::SessionRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions", get(list).post(create))
        .route("/sessions/{id}", get(get_one).delete(terminate))
        .route("/sessions/{id}/history", get(history))
        .route("/sessions/{id}/logs", get(logs))
        .route("/sessions/{id}/terminal", post(terminal))
        .route("/scheduler/queue", get(queue))
}

/// A session the user may see: their own, or any for an admin. Anything else — including a
/// malformed id — answers exactly like a missing session.
pub(crate) async fn visible(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
) -> AppResult<SessionRow> {
    let row = if uuid::Uuid::parse_str(id).is_ok() {
        store::get(&state.db, id).await?
    } else {
        None
    };
    match row {
        Some(r) if r.owner_id == user.id || user.is_admin() => Ok(r),
        _ => Err(AppError::not_found("session")),
    }
}

/// Like [`visible`] but only for the owner (terminals are personal, even for admins).
pub(crate) async fn owned(state: &AppState, user: &CurrentUser, id: &str) -> AppResult<SessionRow> {
    let r = visible(state, user, id).await?;
    if r.owner_id != user.id {
        return Err(AppError::not_found("session"));
    }
    Ok(r)
}

fn generated_name() -> String {
    format!("session-{}", wsproxy::secret::random_hex(3))
}

/// Finds the image a request names, refusing unknown and unlaunchable ones.
fn pick_image<'a>(images: &'a [ImageInfo], wanted: &str) -> AppResult<&'a ImageInfo> {
    let bare = wanted.strip_suffix(":latest").unwrap_or(wanted);
    let Some(img) = images.iter().find(|i| i.name == bare) else {
        let names: Vec<&str> = images
            .iter()
            .filter(|i| i.error.is_none())
            .map(|i| i.name.as_str())
            .collect();
        return Err(AppError::field(
            "image",
            format!(
                "Image \"{}\" is not available on this server; choose one of: {}.",
                wanted.escape_default(),
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    if let Some(err) = &img.error {
        return Err(AppError::field(
            "image",
            format!("Image {} cannot be launched. {err}", img.name),
        ));
    }
    Ok(img)
}

#[utoipa::path(
    post,
    path = "/sessions",
    operation_id = "create_session",
    tag = "sessions",
    summary = "Launch a session",
    request_body = api::session::CreateSession,
    responses((status = 201, description = "Accepted (PENDING)", body = api::session::Session), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateSession>,
) -> AppResult<(StatusCode, Json<Session>)> {
    let valid = req.validate().map_err(AppError::validation)?;
    let node = state.lifecycle.image_node().ok_or_else(|| {
        AppError::new(
            ProblemType::Unavailable,
            "No Docker engine is connected; check that the local engine runs.",
        )
    })?;
    let images = node
        .list_images()
        .await
        .map_err(|e| AppError::new(ProblemType::Unavailable, e.0))?;
    let image = pick_image(&images, &valid.image)?;
    if let Some(min) = &image.min_resources {
        let mut errs = Vec::new();
        if valid.resources.cpu < min.cpu {
            errs.push(FieldError::new(
                "resources.cpu",
                format!("Image {} needs at least {} CPU.", image.name, min.cpu),
            ));
        }
        if valid.resources.mem < min.mem {
            errs.push(FieldError::new(
                "resources.mem",
                format!(
                    "Image {} needs at least {} of memory.",
                    image.name,
                    min.mem.human()
                ),
            ));
        }
        if !errs.is_empty() {
            return Err(AppError::validation(errs));
        }
    }
    let nodes = crate::nodes::capacities(&state.db).await?;
    if !nodes.iter().any(|(_, cap)| valid.resources.fits_in(cap)) {
        let biggest = nodes
            .iter()
            .max_by_key(|(_, c)| (c.cpu, c.mem))
            .map(|(n, c)| format!("the largest node, {n}, has {} in all", c.summary()))
            .unwrap_or_else(|| "there are no nodes".into());
        return Err(AppError::new(
            ProblemType::Unschedulable,
            format!(
                "No node could ever hold {}: {biggest}.",
                valid.resources.summary()
            ),
        ));
    }
    let project = match &valid.project {
        Some(p) => Some(
            crate::projects::member_project(&state.db, &user.id, p)
                .await?
                .ok_or_else(|| {
                    AppError::field(
                        "project",
                        format!(
                            "There is no project named \"{}\" that you belong to.",
                            p.escape_default()
                        ),
                    )
                })?,
        ),
        None => None,
    };
    // The owner's policy: a request it could never admit, or one pending too many, is refused now.
    let policy = crate::policy::effective(&state.db, &user.id).await?.policy;
    if let Err(m) = policy.could_ever_admit(&valid.resources) {
        return Err(AppError::new(ProblemType::Quota, m));
    }
    if let Some(max) = policy.max_pending_sessions {
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM sessions WHERE owner_id = $1 AND status = 'PENDING'",
        )
        .bind(&user.id)
        .fetch_one(&state.db)
        .await?;
        if pending as u64 >= max {
            return Err(AppError::new(
                ProblemType::Quota,
                format!(
                    "Your policy allows {max} pending session{} and you have {pending} waiting; wait for one to start or end it.",
                    if max == 1 { "" } else { "s" }
                ),
            ));
        }
    }
    let mut apps = api::images::session_apps(&image.apps, &valid.preopen_ports)
        .map_err(|m| AppError::field("preopen_ports", m))?;
    apps.extend(crate::ssh::session::app_for(valid.kind));
    let mounts = crate::vfolders::mounts::resolve(&state.db, &user, &valid.mounts).await?;
    let home = crate::vfolders::home::for_launch(&state, &user, valid.home, &mounts).await?;
    let app_secret = wsproxy::secret::random_hex(wsproxy::secret::TOKEN_BYTES);
    let id = uuid::Uuid::new_v4().to_string();
    let name = valid.name.clone().unwrap_or_else(generated_name);
    let res = store::insert(
        &state.db,
        store::NewSession {
            id: &id,
            owner_id: &user.id,
            name: &name,
            kind: valid.kind,
            project_id: project.as_ref().map(|(id, _)| id.as_str()),
            image: &image.name,
            resources: valid.resources,
            env: &valid.env,
            command: valid.command.as_deref(),
            reason: "Queued for scheduling.",
            apps: &apps,
            app_secret: &app_secret,
            mounts: &mounts,
            home_vfolder: home.as_deref(),
        },
    )
    .await;
    match res {
        Ok(()) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(AppError::conflict(format!(
                "You already have a live session named \"{name}\"; choose another name or end that one."
            )))
        }
        Err(e) => return Err(e.into()),
    }
    // The answer describes the session as created (PENDING, with its queue position), so
    // it is read before the scheduler is woken and may move it on.
    let row = store::get(&state.db, &id)
        .await?
        .ok_or_else(|| AppError::not_found("session"))?;
    let created = store::to_api(&state.db, &row).await?;
    state.lifecycle.publish(&id).await;
    state.lifecycle.wake();
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    summary = "Sessions (own; all for admins), newest first",
    responses((status = 200, description = "OK", body = Vec<api::session::Session>))
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<Session>>> {
    let rows: Vec<SessionRow> = if user.is_admin() {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{} ORDER BY s.seq DESC LIMIT 500",
            store::SELECT
        )))
        .fetch_all(&state.db)
        .await?
    } else {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{} WHERE s.owner_id = $1 ORDER BY s.seq DESC LIMIT 500",
            store::SELECT
        )))
        .bind(&user.id)
        .fetch_all(&state.db)
        .await?
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(store::to_api(&state.db, r).await?);
    }
    Ok(Json(out))
}

/// `GET /api/v1/scheduler/queue`: PENDING sessions in queue order, each with the reason it
/// waits (all of them for admins, one's own otherwise).
#[utoipa::path(
    get,
    path = "/scheduler/queue",
    operation_id = "scheduler_queue",
    tag = "sessions",
    summary = "PENDING sessions in queue order, each with why it waits (all for admins, own otherwise)",
    responses((status = 200, description = "OK", body = Vec<api::session::Session>))
)]
async fn queue(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<Session>>> {
    let rows = store::with_status(&state.db, &[api::session::SessionStatus::Pending]).await?;
    let mut out = Vec::new();
    for r in rows
        .iter()
        .filter(|r| user.is_admin() || r.owner_id == user.id)
    {
        out.push(store::to_api(&state.db, r).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/sessions/{id}",
    operation_id = "get_session",
    tag = "sessions",
    summary = "One session",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "OK", body = api::session::Session), (status = 404, response = crate::openapi::NotFound))
)]
async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Session>> {
    let row = visible(&state, &user, &id).await?;
    Ok(Json(store::to_api(&state.db, &row).await?))
}

#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    operation_id = "terminate_session",
    tag = "sessions",
    summary = "Terminate (or withdraw while PENDING); idempotent",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "OK", body = api::session::Session), (status = 404, response = crate::openapi::NotFound))
)]
async fn terminate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Session>> {
    let row = visible(&state, &user, &id).await?;
    state
        .lifecycle
        .terminate(&row.id, &lifecycle::EndCause::User(user.username.clone()))
        .await?;
    let row = store::get(&state.db, &row.id)
        .await?
        .ok_or_else(|| AppError::not_found("session"))?;
    Ok(Json(store::to_api(&state.db, &row).await?))
}

#[utoipa::path(
    get,
    path = "/sessions/{id}/history",
    operation_id = "session_history",
    tag = "sessions",
    summary = "Status history with reasons",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "OK", body = Vec<api::session::HistoryEntry>), (status = 404, response = crate::openapi::NotFound))
)]
async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<HistoryEntry>>> {
    let row = visible(&state, &user, &id).await?;
    Ok(Json(store::history(&state.db, &row.id).await?))
}

/// Lines of output a follower gets before the live part.
const FOLLOW_TAIL_LINES: u32 = 1000;
/// Log streams one user may follow at once in this process (each holds an engine connection).
const MAX_FOLLOWS: u32 = 8;
/// How long a follower waits for a session that has not started yet.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Log streams being followed, per user.
static FOLLOWING: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, u32>>> =
    std::sync::LazyLock::new(Default::default);

/// One of a user's follow slots, given back when the stream ends.
struct FollowSlot(String);

impl FollowSlot {
    fn take(user: &str) -> Option<Self> {
        let mut map = FOLLOWING.lock().expect("follow slots");
        let n = map.entry(user.to_string()).or_default();
        if *n >= MAX_FOLLOWS {
            return None;
        }
        *n += 1;
        Some(Self(user.to_string()))
    }
}

impl Drop for FollowSlot {
    fn drop(&mut self) {
        let mut map = FOLLOWING.lock().expect("follow slots");
        if let Some(n) = map.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.0);
            }
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    #[serde(default)]
    follow: bool,
}

#[utoipa::path(
    get,
    path = "/sessions/{id}/logs",
    operation_id = "session_logs",
    tag = "sessions",
    summary = "Container output (kept after the session ends); `follow=true` streams it live while the session runs",
    params(("id" = String, Path, description = "session id"), ("follow" = Option<bool>, Query, description = "stream the output as it comes (the last 1000 lines first) until the session stops")),
    responses((status = 200, description = "The output, at most the last MiB (or, following, as it comes)", body = String, content_type = "text/plain; charset=utf-8"), (status = 400, response = crate::openapi::BadRequest), (status = 404, response = crate::openapi::NotFound), (status = 429, response = crate::openapi::TooManyRequests))
)]
async fn logs(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> AppResult<Response> {
    let row = visible(&state, &user, &id).await?;
    let node = state.lifecycle.node_of(&row);
    if q.follow && row.status().is_live() {
        // A session still starting is waited for; then its output, live until the container
        // stops, the client goes, or the user loses access.
        let Some(slot) = FollowSlot::take(&user.id) else {
            return Err(AppError::new(
                ProblemType::TooManyRequests,
                format!(
                    "You are following {MAX_FOLLOWS} logs already; close one to follow another."
                ),
            ));
        };
        let access = user.access(&state);
        let lifecycle = state.lifecycle.clone();
        let chunks = async_stream::stream! {
            let _slot = slot;
            let mut row = row;
            let waiting_since = std::time::Instant::now();
            loop {
                if let (Some(_), Some(node)) = (&row.container_id, lifecycle.node_of(&row)) {
                    let mut live = node.follow_logs(&row.id, FOLLOW_TAIL_LINES);
                    while let Some(Ok(chunk)) = live.next().await {
                        yield Ok::<_, std::io::Error>(chunk);
                    }
                    break;
                }
                if !row.status().is_live() {
                    yield Ok(row.logs.clone().unwrap_or_default().into());
                    break;
                }
                if waiting_since.elapsed() > FOLLOW_WAIT {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                match store::get(lifecycle.db(), &row.id).await {
                    Ok(Some(r)) => row = r,
                    _ => break,
                }
            }
        }
        .take_until(async move { access.revoked().await });
        return Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            axum::body::Body::from_stream(chunks),
        )
            .into_response());
    }
    let text =
        if let (true, Some(_), Some(node)) = (row.status().is_live(), &row.container_id, node) {
            node.logs(&row.id, 1 << 20).await.unwrap_or_default()
        } else {
            row.logs.clone().unwrap_or_default()
        };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[utoipa::path(
    post,
    path = "/sessions/{id}/terminal",
    operation_id = "open_terminal",
    tag = "sessions",
    summary = "A websocket URL naming a new terminal handle (owner only); for a session on a node with its own proxy, a URL on that proxy with a token signed for it",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "OK", body = api::session::TerminalUrl), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn terminal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<TerminalUrl>> {
    let row = owned(&state, &user, &id).await?;
    let status = row.status();
    let (Some(cid), api::session::SessionStatus::Running) = (row.container_id.clone(), status)
    else {
        return Err(AppError::conflict(format!(
            "The session is {status}, not RUNNING; a terminal opens once it runs."
        )));
    };
    // A node with a proxy of its own: the terminal is held there, on a token signed here.
    if let Some(p) = crate::nodes::proxy::of_session(&state, &row).await? {
        return Ok(Json(TerminalUrl {
            url: p.terminal_url(&row, &user.access(&state))?,
        }));
    }
    let (hid, secret) = state.terminals.create(
        wsproxy::HandleInfo {
            session_id: row.id.clone(),
            owner_id: row.owner_id.clone(),
            container_id: cid,
        },
        state
            .lifecycle
            .node_of(&row)
            .ok_or_else(|| {
                AppError::conflict(format!(
                    "Node {} of this session is not connected; try again when it is up.",
                    row.node.as_deref().unwrap_or("(none)")
                ))
            })?
            .exec_endpoint(),
        user.access(&state),
    );
    let base = state.public_url();
    let ws = base.replacen("http", "ws", 1);
    Ok(Json(TerminalUrl {
        url: format!("{ws}/api/v1/terminals/{hid}?secret={secret}"),
    }))
}
