//! `/api/v1/nodes`: the Docker engines sessions run on (admins), their health checks, and
//! connecting them at start. The local engine is the built-in node [`LOCAL`].
//!
//! A node's state is derived from two facts: whether its engine answers (`DOWN` after
//! [`FAILURES_FOR_DOWN`] failed checks in a row, with the reason) and whether an admin drains
//! it. Allocation is never stored: it is the sum of the live sessions placed on the node.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, AppResult};
use crate::node::docker::{DockerNode, EngineEndpoint};
use crate::node::Node;
use crate::{db, AppState};
use api::nodes::{CreateNode, Endpoint, Node as ApiNode, NodeState, UpdateNode};
use api::{Bytes, Millicores, Resources};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The built-in node of the local engine.
pub const LOCAL: &str = "local";
/// Failed health checks in a row before a node is `DOWN`.
pub const FAILURES_FOR_DOWN: u32 = 3;
/// How long connecting to or pinging an engine may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(4);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(list).post(create))
        .route("/nodes/{id}", get(get_one).patch(update).delete(remove))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    pub docker: String,
    pub grp: Option<String>,
    pub local: bool,
    pub draining: bool,
    pub healthy: bool,
    pub state_reason: String,
    pub cpu_milli: i64,
    pub mem_bytes: i64,
    pub tls_dir: Option<String>,
    pub created_at: String,
    pub checked_at: Option<String>,
    /// GPU devices declared for this node in configuration (`[node_gpus]`).
    pub gpus: i64,
}

impl NodeRow {
    pub fn state(&self) -> NodeState {
        if !self.healthy {
            NodeState::Down
        } else if self.draining {
            NodeState::Draining
        } else {
            NodeState::Up
        }
    }

    pub fn schedulable(&self) -> bool {
        self.state() == NodeState::Up
    }

    /// What sessions may use here (the engine's size minus the reserve, as stored).
    pub fn capacity(&self) -> Resources {
        Resources {
            cpu: Millicores(self.cpu_milli.max(0) as u64),
            mem: Bytes(self.mem_bytes.max(0) as u64),
            gpu: self.gpus.max(0) as u32,
            gpu_shares: api::Shares(self.gpus.max(0) as u32 * 100),
        }
    }

    /// Whether the node runs on the gateway's host (a unix socket), where vfolders live.
    pub fn reaches_storage(&self) -> bool {
        self.docker.starts_with("unix://")
    }
}

pub async fn rows(db: &db::Db) -> sqlx::Result<Vec<NodeRow>> {
    sqlx::query_as("SELECT * FROM nodes ORDER BY local DESC, name")
        .fetch_all(db)
        .await
}

async fn row(db: &db::Db, id: &str) -> AppResult<NodeRow> {
    let r: Option<NodeRow> = sqlx::query_as("SELECT * FROM nodes WHERE id = ? OR name = ?")
        .bind(id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    r.ok_or_else(|| AppError::not_found("node"))
}

/// Every node's name and capacity (any state), for "no node could ever hold it".
pub async fn capacities(db: &db::Db) -> AppResult<Vec<(String, Resources)>> {
    Ok(rows(db)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r.capacity()))
        .collect())
}

/// Connects to an engine, within [`ANSWER_TIMEOUT`].
async fn connect(row: &NodeRow, instance: &str) -> Result<Arc<dyn Node>, String> {
    // TLS material was checked on the way in; the endpoint's form is what matters here.
    let endpoint = match api::nodes::parse_endpoint(&row.docker, true)? {
        Endpoint::Unix(path) => EngineEndpoint::Unix(PathBuf::from(&path)),
        Endpoint::Tcp(addr) => match &row.tls_dir {
            Some(dir) => EngineEndpoint::Tls {
                addr,
                dir: PathBuf::from(dir),
            },
            None => {
                return Err(format!(
                    "Node {} has no TLS material for {}; remove it and add it again with tls {{ca, cert, key}}.",
                    row.name, row.docker
                ))
            }
        },
    };
    let fut = DockerNode::connect(&row.name, endpoint, instance);
    match tokio::time::timeout(ANSWER_TIMEOUT, fut).await {
        // NVML sees this host's GPUs: they belong to the built-in local node.
        Ok(Ok(n)) if row.local => Ok(Arc::new(n.with_nvidia(local_gpus()))),
        Ok(Ok(n)) => Ok(Arc::new(n)),
        Ok(Err(e)) => Err(format!("{e:#}.")),
        Err(_) => Err(format!(
            "The Docker engine at {} did not answer within {} s.",
            row.docker,
            ANSWER_TIMEOUT.as_secs()
        )),
    }
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

/// NVIDIA devices on this host, found once (0 without the NVIDIA library).
fn local_gpus() -> u32 {
    static FOUND: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| match crate::node::gpu::discover() {
        Ok(n) => {
            tracing::info!("NVML found {n} NVIDIA GPU(s) on this host");
            n
        }
        Err(e) => {
            tracing::info!("no NVIDIA GPUs on this host: {e}");
            0
        }
    })
}

/// Records a successful connection: capacity (minus the reserve) and health.
async fn mark_up(
    state_db: &db::Db,
    name: &str,
    node: &dyn Node,
    reserve: &Resources,
    reason: &str,
) -> sqlx::Result<()> {
    let cap = node.capacity().saturating_sub(reserve);
    // Isolation berth found broken on the node is said where admins look at its state.
    let reason = match node.isolation_warning() {
        Some(w) => format!("{reason} {w}"),
        None => reason.to_string(),
    };
    sqlx::query(
        "UPDATE nodes SET healthy = 1, state_reason = ?, cpu_milli = ?, mem_bytes = ?, checked_at = ? WHERE name = ?",
    )
    .bind(&reason)
    .bind(cap.cpu.0 as i64)
    .bind(cap.mem.0 as i64)
    .bind(db::now())
    .bind(name)
    .execute(state_db)
    .await?;
    Ok(())
}

async fn mark_down(db: &db::Db, name: &str, reason: &str) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE nodes SET healthy = 0, state_reason = ? WHERE name = ? AND healthy = 1",
    )
    .bind(reason)
    .bind(name)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// At start: makes sure the local node exists (pointing at the configured socket) and
/// connects every node. The local engine must answer (berth cannot work without it); other
/// nodes that do not answer start `DOWN`.
pub async fn bootstrap(
    db: &db::Db,
    config: &crate::config::Config,
    instance: &str,
) -> anyhow::Result<Arc<crate::node::registry::Nodes>> {
    let local_url = format!("unix://{}", config.docker_socket.display());
    sqlx::query(
        "INSERT INTO nodes(id, name, docker, local, created_at) VALUES (?, ?, ?, 1, ?)
         ON CONFLICT(name) DO UPDATE SET docker = excluded.docker",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(LOCAL)
    .bind(&local_url)
    .bind(db::now())
    .execute(db)
    .await?;
    // Devices: NVML's for the local node, and `[node_gpus]` in berth.toml (which wins).
    sqlx::query("UPDATE nodes SET gpus = CASE WHEN local = 1 THEN ? ELSE 0 END")
        .bind(i64::from(local_gpus()))
        .execute(db)
        .await?;
    for (name, n) in &config.node_gpus {
        sqlx::query("UPDATE nodes SET gpus = ? WHERE name = ?")
            .bind(i64::from(*n))
            .bind(name)
            .execute(db)
            .await?;
    }
    let nodes = Arc::new(crate::node::registry::Nodes::default());
    for r in rows(db).await? {
        match connect(&r, instance).await {
            Ok(n) => {
                mark_up(
                    db,
                    &r.name,
                    n.as_ref(),
                    &config.node_reserve,
                    "The Docker engine answers.",
                )
                .await?;
                nodes.insert(n);
            }
            Err(e) if r.local => anyhow::bail!("{e}"),
            Err(e) => {
                tracing::warn!(node = %r.name, "node is down: {e}");
                mark_down(db, &r.name, &e).await?;
            }
        }
    }
    Ok(nodes)
}

/// Health checks for as long as the process lives: every node is pinged every
/// `config.node_check_s`; after [`FAILURES_FOR_DOWN`] failures it goes `DOWN` and its sessions
/// end in `ERROR`; when it answers again it comes back `UP` (containers left behind are
/// removed by reconciling).
pub async fn run_health(state: AppState, instance: String) {
    let every = Duration::from_secs(state.config.node_check_s.max(1));
    let mut failures: HashMap<String, u32> = HashMap::new();
    loop {
        tokio::time::sleep(every).await;
        let Ok(all) = rows(&state.db).await else {
            continue;
        };
        for r in all {
            if let Err(e) = check(&state, &instance, &r, &mut failures).await {
                tracing::warn!(node = %r.name, error = %format!("{e:?}"), "health check failed to record");
            }
        }
    }
}

async fn check(
    state: &AppState,
    instance: &str,
    r: &NodeRow,
    failures: &mut HashMap<String, u32>,
) -> anyhow::Result<()> {
    let lifecycle = &state.lifecycle;
    let answer = match lifecycle.nodes().get(&r.name) {
        Some(n) => match tokio::time::timeout(ANSWER_TIMEOUT, n.ping()).await {
            Ok(Ok(())) => Ok(n),
            Ok(Err(e)) => Err(e.0),
            Err(_) => Err(format!(
                "it did not answer within {} s",
                ANSWER_TIMEOUT.as_secs()
            )),
        },
        None => connect(r, instance).await,
    };
    match answer {
        Ok(n) => {
            failures.remove(&r.name);
            let new = lifecycle.nodes().get(&r.name).is_none();
            if new {
                lifecycle.nodes().insert(n.clone());
                tokio::spawn(lifecycle.clone().watch_node(n.clone()));
            }
            if !r.healthy || new {
                mark_up(
                    &state.db,
                    &r.name,
                    n.as_ref(),
                    &state.config.node_reserve,
                    "The Docker engine answers again.",
                )
                .await?;
                tracing::info!(node = %r.name, "node is up again");
                lifecycle.reconcile_node(&n, false).await?;
                lifecycle.wake();
            } else {
                sqlx::query("UPDATE nodes SET checked_at = ? WHERE id = ?")
                    .bind(db::now())
                    .bind(&r.id)
                    .execute(&state.db)
                    .await?;
            }
        }
        Err(e) => {
            let n = failures.entry(r.name.clone()).or_default();
            *n += 1;
            if *n >= FAILURES_FOR_DOWN && r.healthy {
                let e = e.trim_end_matches('.');
                let reason = format!(
                    "The Docker engine at {} did not answer {FAILURES_FOR_DOWN} health checks in a row ({e}).",
                    r.docker
                );
                if mark_down(&state.db, &r.name, &reason).await? {
                    tracing::warn!(node = %r.name, "node is down: {reason}");
                    lifecycle.node_down(&r.name, &reason).await?;
                }
            }
        }
    }
    Ok(())
}

/// A live session's node, CPU, memory, GPUs, GPU shares and held devices.
type Holding = (Option<String>, i64, i64, i64, i64, Option<String>);

/// The API view of every node, with what live sessions hold on each.
async fn views(state: &AppState) -> AppResult<Vec<ApiNode>> {
    let holding: Vec<Holding> = sqlx::query_as(
        "SELECT node, cpu_milli, mem_bytes, gpu, gpu_shares, gpu_alloc FROM sessions
         WHERE status IN ('SCHEDULED', 'PREPARING', 'RUNNING', 'TERMINATING')",
    )
    .fetch_all(&state.db)
    .await?;
    Ok(rows(&state.db)
        .await?
        .into_iter()
        .map(|r| {
            let mut allocated = Resources::default();
            let mut sessions = 0;
            let mut devices: Vec<u32> = vec![0; r.gpus.max(0) as usize];
            for (node, cpu, mem, gpu, shares, hold) in &holding {
                if node.as_deref() == Some(r.name.as_str()) {
                    sessions += 1;
                    let hold: crate::sessions::store::GpuHold = hold
                        .as_deref()
                        .and_then(|j| serde_json::from_str(j).ok())
                        .unwrap_or_default();
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
                created_at: r.created_at.clone(),
                checked_at: r.checked_at.clone(),
            }
        })
        .collect())
}

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

async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<ApiNode>> {
    user.require_admin()?;
    let r = row(&state.db, &id).await?;
    Ok(Json(view(&state, &r.id).await?))
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CreateNode>,
) -> AppResult<(StatusCode, Json<ApiNode>)> {
    user.require_admin()?;
    let endpoint = req.validate().map_err(AppError::validation)?;
    let taken: Option<(String, String)> =
        sqlx::query_as("SELECT name, docker FROM nodes WHERE name = ? OR docker = ?")
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
    };
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
        "INSERT INTO nodes(id, name, docker, grp, created_at, gpus, tls_dir) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&candidate.name)
    .bind(&candidate.docker)
    .bind(&candidate.grp)
    .bind(&candidate.created_at)
    .bind(candidate.gpus)
    .bind(&candidate.tls_dir)
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
    tokio::spawn(lifecycle.clone().watch_node(node.clone()));
    lifecycle.reconcile_node(&node, false).await?;
    lifecycle.wake();
    Ok((StatusCode::CREATED, Json(view(&state, &id).await?)))
}

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
    sqlx::query("UPDATE nodes SET draining = ?, state_reason = ? WHERE id = ?")
        .bind(draining)
        .bind(&reason)
        .bind(&r.id)
        .execute(&state.db)
        .await?;
    state.lifecycle.wake();
    Ok(Json(view(&state, &r.id).await?))
}

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
        "SELECT name FROM sessions WHERE node = ? AND status IN ('SCHEDULED', 'PREPARING', 'RUNNING', 'TERMINATING')",
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
    sqlx::query("DELETE FROM nodes WHERE id = ?")
        .bind(&r.id)
        .execute(&state.db)
        .await?;
    state.lifecycle.nodes().remove(&r.name);
    if let Some(dir) = &r.tls_dir {
        remove_tls(std::path::Path::new(dir));
    }
    Ok(StatusCode::NO_CONTENT)
}
