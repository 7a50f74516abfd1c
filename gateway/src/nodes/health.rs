//! Connecting nodes: at start ([`bootstrap`]) and every `--node-check-s` ([`run_health`]),
//! which marks a node `DOWN` after [`FAILURES_FOR_DOWN`] failed checks in a row and `UP` when
//! it answers again.

use super::docker::{DockerNode, EngineEndpoint};
use super::registry::Nodes;
use super::store::{mark_down, mark_up, rows, NodeRow};
use super::{Node, LOCAL};
use crate::{db, AppState};
use api::nodes::Endpoint;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Failed health checks in a row before a node is `DOWN`.
pub const FAILURES_FOR_DOWN: u32 = 3;
/// How long connecting to or pinging an engine may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(4);

/// Connects to an engine, within [`ANSWER_TIMEOUT`].
pub(crate) async fn connect(row: &NodeRow, instance: &str) -> Result<Arc<dyn Node>, String> {
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

/// NVIDIA devices on this host, found once (0 without the NVIDIA library).
fn local_gpus() -> u32 {
    static FOUND: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| match super::gpu::discover() {
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

/// At start: makes sure the local node exists (pointing at the configured socket) and
/// connects every node. The local engine must answer (berth cannot work without it); other
/// nodes that do not answer start `DOWN`.
pub async fn bootstrap(
    db: &db::Db,
    config: &crate::config::Config,
    instance: &str,
) -> anyhow::Result<Arc<Nodes>> {
    let local_url = format!("unix://{}", config.docker_socket.display());
    sqlx::query(
        "INSERT INTO nodes(id, name, docker, local, created_at) VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT(name) DO UPDATE SET docker = excluded.docker",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(LOCAL)
    .bind(&local_url)
    .bind(db::now())
    .execute(db)
    .await?;
    // Devices: NVML's for the local node, and `[node_gpus]` in berth.toml (which wins).
    sqlx::query("UPDATE nodes SET gpus = CASE WHEN local = 1 THEN $1 ELSE 0 END")
        .bind(i64::from(local_gpus()))
        .execute(db)
        .await?;
    for (name, n) in &config.node_gpus {
        sqlx::query("UPDATE nodes SET gpus = $1 WHERE name = $2")
            .bind(i64::from(*n))
            .bind(name)
            .execute(db)
            .await?;
    }
    let nodes = Arc::new(Nodes::default());
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

/// Health checks until shutdown (run under `Lifecycle::background`): every node is pinged every
/// `config.node_check_s`; after [`FAILURES_FOR_DOWN`] failures it goes `DOWN` and its sessions
/// end in `ERROR`; when it answers again it comes back `UP` (containers left behind are
/// removed by reconciling). Only the leader checks and marks nodes; a follower connects the
/// nodes it lacks (added through another replica) so that it can reach their sessions.
pub async fn run_health(state: AppState, instance: String) {
    let every = Duration::from_secs(state.config.node_check_s.max(1));
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut missing_before = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(every).await;
        let Ok(all) = rows(&state.db).await else {
            continue;
        };
        // Nodes removed through another replica are forgotten here too: those missing from
        // the table at two checks in a row (one added meanwhile is in the table by the next).
        let nodes = state.lifecycle.nodes();
        let missing: std::collections::HashSet<String> = nodes
            .all()
            .iter()
            .map(|n| n.name().to_string())
            .filter(|name| !all.iter().any(|r| &r.name == name))
            .collect();
        for name in missing.intersection(&missing_before) {
            nodes.remove(name);
        }
        missing_before = missing;
        if !state.lifecycle.leads() {
            failures.clear();
            follow(&state, &instance, &all).await;
            continue;
        }
        for r in all {
            if let Err(e) = check(&state, &instance, &r, &mut failures).await {
                tracing::warn!(node = %r.name, error = %format!("{e:?}"), "health check failed to record");
            }
        }
    }
}

/// A follower's part: connects the healthy nodes its registry lacks (added through another
/// replica), so that it can reach their sessions.
async fn follow(state: &AppState, instance: &str, all: &[NodeRow]) {
    let nodes = state.lifecycle.nodes();
    for r in all
        .iter()
        .filter(|r| r.healthy && nodes.get(&r.name).is_none())
    {
        if let Ok(n) = connect(r, instance).await {
            nodes.insert(n);
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
                lifecycle.watch(n.clone());
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
                sqlx::query("UPDATE nodes SET checked_at = $1 WHERE id = $2")
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
