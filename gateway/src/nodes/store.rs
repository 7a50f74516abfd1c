//! The `nodes` table: a node's record, its state and capacity as stored, and the writes that
//! record a health check's outcome.

use super::Node;
use crate::db;
use crate::error::{AppError, AppResult};
use api::nodes::NodeState;
use api::{Bytes, Millicores, Resources};

/// A row of the `nodes` table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    pub docker: String,
    pub grp: Option<String>,
    #[sqlx(try_from = "crate::db::Flag")]
    pub local: bool,
    #[sqlx(try_from = "crate::db::Flag")]
    pub draining: bool,
    #[sqlx(try_from = "crate::db::Flag")]
    pub healthy: bool,
    pub state_reason: String,
    pub cpu_milli: i64,
    pub mem_bytes: i64,
    pub tls_dir: Option<String>,
    pub created_at: String,
    pub checked_at: Option<String>,
    /// GPU devices declared for this node in configuration (`[node_gpus]`).
    pub gpus: i64,
    /// The public URL of the node's own `berth wsproxy` (see [`super::proxy`]).
    pub proxy_url: Option<String>,
    /// The key of that proxy (printed as `***`).
    #[sqlx(try_from = "Option<String>")]
    pub proxy_key: ProxyKey,
    /// Where the node's engine sees the folder storage, when declared (`CreateNode::storage`).
    pub storage: Option<String>,
}

/// A node's proxy key as stored; printed as `***`.
#[derive(Debug, Clone, Default)]
pub struct ProxyKey(pub Option<wsproxy::token::Key>);

impl From<Option<String>> for ProxyKey {
    fn from(v: Option<String>) -> Self {
        Self(v.map(wsproxy::token::Key::new))
    }
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

    /// Whether sessions with folders may run here: the node declared where it sees the folder
    /// storage, or it runs on the gateway's host (a unix socket) and sees the gateway's own.
    pub fn reaches_storage(&self) -> bool {
        self.storage.is_some() || self.docker.starts_with("unix://")
    }

    /// The directory the node's engine bind-mounts a folder from: below its declared view of
    /// the storage, else the gateway's own path (`gateway_view`, a node on its host).
    pub fn folder_source(
        &self,
        gateway_view: &std::path::Path,
        folder: &str,
    ) -> std::path::PathBuf {
        match &self.storage {
            Some(root) => std::path::Path::new(root)
                .join(crate::vfolders::fs::FOLDERS_DIR)
                .join(folder),
            None => gateway_view.join(folder),
        }
    }
}

pub async fn rows(db: &db::Db) -> sqlx::Result<Vec<NodeRow>> {
    sqlx::query_as("SELECT * FROM nodes ORDER BY local DESC, name")
        .fetch_all(db)
        .await
}

pub(crate) async fn row(db: &db::Db, id: &str) -> AppResult<NodeRow> {
    let r: Option<NodeRow> = sqlx::query_as("SELECT * FROM nodes WHERE id = $1 OR name = $2")
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

/// Records a successful connection: capacity (minus the reserve) and health.
pub(crate) async fn mark_up(
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
        "UPDATE nodes SET healthy = 1, state_reason = $1, cpu_milli = $2, mem_bytes = $3, checked_at = $4 WHERE name = $5",
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

pub(crate) async fn mark_down(db: &db::Db, name: &str, reason: &str) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE nodes SET healthy = 0, state_reason = $1 WHERE name = $2 AND healthy = 1",
    )
    .bind(reason)
    .bind(name)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}
