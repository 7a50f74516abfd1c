//! `/api/v1/nodes`: adding, listing, draining and removing nodes (admins), with the TLS
//! material of `tcp://` engines kept under `DATA_DIR/nodes/<id>/`.

use super::health::connect;
use super::store::{mark_up, row, rows, NodeRow};
use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::nodes::{CreateNode, Endpoint, Node as ApiNode, NodeState, UpdateNode};
use api::{Bytes, Millicores, Resources};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::path::PathBuf;

/// The `/nodes` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(list).post(create))
        .route("/nodes/{id}", get(get_one).patch(update).delete(remove))
}

/// Where a TCP node's TLS material lives: `DATA_DIR/nodes/<node id>/`.
fn tls_dir(state: &AppState, node_id: &str) -> PathBuf {
    state.config.data_dir.join("nodes").join(node_id)
}

/// Writes the PEM text to `dir` (`ca.pem`, `cert.pem`, `key.pem`, mode 0600; the directory
/// 0700), replacing what was there.
fn write_tls(dir: &std::path::Path, tls: &api::nodes::NodeTls) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for (file, pem) in [
        ("ca.pem", &tls.ca),
        ("cert.pem", &tls.cert),
        ("key.pem", &tls.key),
    ] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(file))?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
    }
    Ok(())
}

/// Removes a node's TLS directory (nothing there is fine).
fn remove_tls(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), "could not remove a node's TLS material: {e}");
        }
    }
}

/// Removes a TLS directory written for a node that was then not added.
struct TlsGuard(Option<PathBuf>);

impl Drop for TlsGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            remove_tls(&dir);
        }
    }
}

/// A live session's id, node, CPU, memory, GPUs, GPU shares and held devices.
type Holding = (
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    Option<crate::db::Json<crate::sessions::store::GpuHold>>,
);

/// The API view of every node, with what live sessions hold on each.
pub(crate) async fn views(state: &AppState) -> AppResult<Vec<ApiNode>> {
    let holding: Vec<Holding> = sqlx::query_as(
        "SELECT id, node, cpu_milli, mem_bytes, gpu, gpu_shares, gpu_alloc FROM sessions
         WHERE status IN ('SCHEDULED', 'PREPARING', 'RUNNING', 'TERMINATING')",
    )
    .fetch_all(&state.db)
    .await?;
    let stats = state.lifecycle.stats();
    Ok(rows(&state.db)
        .await?
        .into_iter()
        .map(|r| {
            let mut allocated = Resources::default();
            let mut sessions = 0;
            let mut devices: Vec<u32> = vec![0; r.gpus.max(0) as usize];
            let mut used: Option<api::nodes::NodeUse> = None;
            for (id, node, cpu, mem, gpu, shares, hold) in &holding {
                if node.as_deref() == Some(r.name.as_str()) {
                    sessions += 1;
                    if let Some(s) = stats.latest(id) {
                        let u = used.get_or_insert(api::nodes::NodeUse {
                            cpu: 0.0,
                            mem_bytes: 0,
                            sampled: 0,
                            gpus: Vec::new(),
                        });
                        u.cpu += s.cpu_pct / 100.0 * (*cpu as f64 / 1000.0);
                        u.mem_bytes += s.mem_bytes;
                        u.sampled += 1;
                        for g in s.gpu.into_iter().flatten() {
                            if !u.gpus.iter().any(|x| x.index == g.index) {
                                u.gpus.push(g);
                            }
                        }
                    }
                    let hold = hold.as_ref().map(|h| h.0.clone()).unwrap_or_default();
                    for (i, d) in devices.iter_mut().enumerate() {
                        *d += hold.on(i);
                    }
                    allocated = allocated.add(&Resources {
                        cpu: Millicores(*cpu as u64),
                        mem: Bytes(*mem as u64),
                        gpu: *gpu as u32,
                        gpu_shares: api::Shares(*shares as u32),
                    });
                }
            }
            ApiNode {
                id: r.id.clone(),
                name: r.name.clone(),
                docker: r.docker.clone(),
                group: r.grp.clone(),
                state: r.state(),
                state_reason: r.state_reason.clone(),
                capacity: r.capacity(),
                allocated,
                sessions,
                local: r.local,
                draining: r.draining,
                gpus: devices
                    .iter()
                    .enumerate()
                    .map(|(i, used)| api::nodes::GpuDevice {
                        index: i as u32,
                        allocated: api::Shares(*used).to_string(),
                    })
                    .collect(),
                storage: r.storage.clone(),
                folders: r.reaches_storage(),
                created_at: r.created_at.clone(),
                checked_at: r.checked_at.clone(),
                proxy_url: r.proxy_url.clone(),
                proxy_key: None,
                used: used.map(|mut u| {
                    u.cpu = (u.cpu * 100.0).round() / 100.0;
                    u.gpus.sort_by_key(|g| g.index);
                    u
                }),
            }
        })
        .collect())
}

#[utoipa::path(
    get,
    path = "/nodes",
    operation_id = "list_nodes",
    tag = "nodes",
    summary = "Nodes with capacity, allocation, state and state_reason (admins)",
    responses((status = 200, description = "OK", body = Vec<api::nodes::Node>), (status = 403, response = crate::openapi::Forbidden))
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<ApiNode>>> {
    user.require_admin()?;
    Ok(Json(views(&state).await?))
}

async fn view(state: &AppState, id: &str) -> AppResult<ApiNode> {
    views(state)
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| AppError::not_found("node"))
}

#[utoipa::path(
    get,
    path = "/nodes/{id}",
    operation_id = "get_node",
    tag = "nodes",
    summary = "One node (admins)",
    params(("id" = String, Path, description = "node id or name")),
    responses((status = 200, description = "OK", body = api::nodes::Node), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound))
)]
async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<ApiNode>> {
    user.require_admin()?;
    let r = row(&state.db, &id).await?;
    Ok(Json(view(&state, &r.id).await?))
}

#[utoipa::path(
    post,
    path = "/nodes",
    operation_id = "create_node",
    tag = "nodes",
    summary = "Add a node: connects to its engine first; with proxy_url, the answer carries the proxy's key, once (admins)",
    request_body = api::nodes::CreateNode,
    responses((status = 201, description = "Added", body = api::nodes::Node), (status = 403, response = crate::openapi::Forbidden), (status = 409, response = crate::openapi::Conflict))
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateNode>,
) -> AppResult<(StatusCode, Json<ApiNode>)> {
    user.require_admin()?;
    let endpoint = req.validate().map_err(AppError::validation)?;
    let taken: Option<(String, String)> =
        sqlx::query_as("SELECT name, docker FROM nodes WHERE name = $1 OR docker = $2")
            .bind(&req.name)
            .bind(req.docker.trim())
            .fetch_optional(&state.db)
            .await?;
    if let Some((name, docker)) = taken {
        return Err(AppError::conflict(if name == req.name {
            format!("There is already a node named {name}; choose another name.")
        } else {
            format!("Node {name} already uses the engine at {docker}.")
        }));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let candidate = NodeRow {
        id: id.clone(),
        name: req.name.clone(),
        docker: req.docker.trim().to_string(),
        grp: req.group.clone(),
        local: false,
        draining: false,
        healthy: true,
        state_reason: String::new(),
        cpu_milli: 0,
        mem_bytes: 0,
        tls_dir: None,
        created_at: db::now(),
        checked_at: None,
        gpus: i64::from(state.config.node_gpus.get(&req.name).copied().unwrap_or(0)),
        proxy_url: None,
        proxy_key: Default::default(),
        storage: req.storage.clone(),
    };
    let proxy_url = match &req.proxy_url {
        Some(u) => {
            Some(api::nodes::validate_proxy_url(u).map_err(|m| AppError::field("proxy_url", m))?)
        }
        None => None,
    };
    // Made here, stored, and shown once in this answer.
    let proxy_key = proxy_url.as_ref().map(|_| wsproxy::token::Key::generate());
    // TLS material is written before connecting (bollard reads it from files) and removed
    // again unless the node is added.
    let mut guard = TlsGuard(None);
    let mut candidate = candidate;
    match (&endpoint, &req.tls) {
        (Endpoint::Tcp(_), Some(tls)) => {
            let dir = tls_dir(&state, &id);
            guard.0 = Some(dir.clone());
            write_tls(&dir, tls).map_err(|e| {
                AppError::Internal(anyhow::anyhow!(
                    "storing TLS material in {}: {e}",
                    dir.display()
                ))
            })?;
            candidate.tls_dir = Some(dir.to_string_lossy().into_owned());
        }
        (Endpoint::Unix(_), Some(_)) => {
            return Err(AppError::field(
                "tls",
                "TLS material is for tcp:// engines; a unix socket is reached without it.",
            ))
        }
        _ => {}
    }
    let instance = db::instance_id(&state.db).await?;
    let node = connect(&candidate, &instance)
        .await
        .map_err(|m| AppError::field("docker", m))?;
    // The same engine under another path (a symlinked socket) would be counted twice and
    // reconciled by two nodes: refused.
    if let Some(same) = state
        .lifecycle
        .nodes()
        .all()
        .into_iter()
        .find(|n| !node.engine_id().is_empty() && n.engine_id() == node.engine_id())
    {
        return Err(AppError::conflict(format!(
            "The endpoint {} reaches the same Docker engine as node {}; an engine is added once.",
            candidate.docker,
            same.name()
        )));
    }
    sqlx::query(
        "INSERT INTO nodes(id, name, docker, grp, created_at, gpus, tls_dir, proxy_url, proxy_key, storage) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&candidate.name)
    .bind(&candidate.docker)
    .bind(&candidate.grp)
    .bind(&candidate.created_at)
    .bind(candidate.gpus)
    .bind(&candidate.tls_dir)
    .bind(&proxy_url)
    .bind(proxy_key.as_ref().map(|k| k.expose().to_string()))
    .bind(&candidate.storage)
    .execute(&state.db)
    .await?;
    // Added: its TLS material stays until the node is removed.
    guard.0 = None;
    mark_up(
        &state.db,
        &candidate.name,
        node.as_ref(),
        &state.config.node_reserve,
        "The Docker engine answers.",
    )
    .await?;
    let lifecycle = &state.lifecycle;
    lifecycle.nodes().insert(node.clone());
    lifecycle.watch(node.clone());
    lifecycle.reconcile_node(&node, false).await?;
    lifecycle.wake();
    let mut answer = view(&state, &id).await?;
    answer.proxy_key = proxy_key.map(|k| k.expose().to_string());
    Ok((StatusCode::CREATED, Json(answer)))
}

#[utoipa::path(
    patch,
    path = "/nodes/{id}",
    operation_id = "update_node",
    tag = "nodes",
    summary = "Drain (DRAINING) or undrain (UP) (admins)",
    params(("id" = String, Path, description = "node id or name")),
    request_body = api::nodes::UpdateNode,
    responses((status = 200, description = "OK", body = api::nodes::Node), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateNode>,
) -> AppResult<Json<ApiNode>> {
    user.require_admin()?;
    let want = req.validate().map_err(|e| AppError::validation(vec![e]))?;
    let r = row(&state.db, &id).await?;
    let draining = want == NodeState::Draining;
    let reason = if !r.healthy {
        // A DOWN node keeps saying why it is down.
        r.state_reason.clone()
    } else if draining {
        format!(
            "Drained by {}: running sessions stay, no new ones are placed here.",
            user.username
        )
    } else {
        format!("Put back in service by {}.", user.username)
    };
    sqlx::query("UPDATE nodes SET draining = $1, state_reason = $2 WHERE id = $3")
        .bind(i64::from(draining))
        .bind(&reason)
        .bind(&r.id)
        .execute(&state.db)
        .await?;
    state.lifecycle.wake();
    Ok(Json(view(&state, &r.id).await?))
}

#[utoipa::path(
    delete,
    path = "/nodes/{id}",
    operation_id = "remove_node",
    tag = "nodes",
    summary = "Remove a node without live sessions; not the local one (admins)",
    params(("id" = String, Path, description = "node id or name")),
    responses((status = 204, description = "Removed"), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    user.require_admin()?;
    let r = row(&state.db, &id).await?;
    if r.local {
        return Err(AppError::conflict(format!(
            "Node {} is the built-in local engine and cannot be removed; drain it instead.",
            r.name
        )));
    }
    let live: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sessions WHERE node = $1 AND status IN ('SCHEDULED', 'PREPARING', 'RUNNING', 'TERMINATING')",
    )
    .bind(&r.name)
    .fetch_all(&state.db)
    .await?;
    if !live.is_empty() {
        return Err(AppError::conflict(format!(
            "Node {} still runs {} session{} ({}); drain it and wait for {} to end first.",
            r.name,
            live.len(),
            if live.len() == 1 { "" } else { "s" },
            live.iter()
                .map(|(n,)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if live.len() == 1 { "it" } else { "them" },
        )));
    }
    sqlx::query("DELETE FROM nodes WHERE id = $1")
        .bind(&r.id)
        .execute(&state.db)
        .await?;
    state.lifecycle.nodes().remove(&r.name);
    if let Some(dir) = &r.tls_dir {
        remove_tls(std::path::Path::new(dir));
    }
    Ok(StatusCode::NO_CONTENT)
}
