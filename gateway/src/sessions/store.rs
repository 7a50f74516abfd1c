//! Session rows and their queries.

use crate::db::Json;
use crate::db::{self, Db};
use api::session::{HistoryEntry, Session, SessionStatus, SessionType};
use api::{Bytes, Millicores, Resources, Shares};
use std::collections::BTreeMap;

/// A session as stored, with its owner's and project's names. `Debug` hides the app secret.
#[derive(Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub seq: i64,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub kind: String,
    pub image: String,
    pub cpu_milli: i64,
    pub mem_bytes: i64,
    pub gpu: i64,
    pub gpu_shares: i64,
    /// The environment as JSON; a column that does not decode fails the query.
    pub env: Json<BTreeMap<String, String>>,
    pub command: Option<String>,
    pub status: String,
    pub status_reason: String,
    pub node: Option<String>,
    pub container_id: Option<String>,
    pub exit_code: Option<i64>,
    pub logs: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub terminated_at: Option<String>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub last_activity_at: Option<String>,
    /// JSON list of [`AppPort`]; a column that does not decode fails the query.
    pub ports: Json<Vec<AppPort>>,
    pub app_secret: Option<String>,
    pub preopen_ports: String,
    /// JSON list of [`api::vfolders::Mount`]; a column that does not decode fails the query.
    pub mounts: Json<Vec<api::vfolders::Mount>>,
    /// Place in the queue as the last pass ordered it (PENDING only).
    pub queue_pos: Option<i64>,
    /// The devices a placement took ([`GpuHold`] as JSON); a column that does not decode
    /// fails the query.
    pub gpu_alloc: Option<Json<GpuHold>>,
    /// The owner's home folder mounted at `/home/work`; `None`: a clean home.
    pub home_vfolder: Option<String>,
    /// The session's SSH host key (private, OpenSSH format), made with its first container.
    pub ssh_host_key: Option<String>,
    /// Its public half, `ssh-ed25519 BASE64`.
    pub ssh_host_pub: Option<String>,
    /// Why the session's SSH server cannot run (an image without sshd).
    pub ssh_error: Option<String>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("owner_id", &self.owner_id)
            .field("owner_name", &self.owner_name)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("image", &self.image)
            .field("cpu_milli", &self.cpu_milli)
            .field("mem_bytes", &self.mem_bytes)
            .field("gpu", &self.gpu)
            .field("gpu_shares", &self.gpu_shares)
            .field("env", &self.env)
            .field("command", &self.command)
            .field("status", &self.status)
            .field("status_reason", &self.status_reason)
            .field("node", &self.node)
            .field("container_id", &self.container_id)
            .field("exit_code", &self.exit_code)
            .field("logs", &self.logs)
            .field("created_at", &self.created_at)
            .field("started_at", &self.started_at)
            .field("terminated_at", &self.terminated_at)
            .field("project_id", &self.project_id)
            .field("project_name", &self.project_name)
            .field("last_activity_at", &self.last_activity_at)
            .field("ports", &self.ports)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "***"))
            .field("preopen_ports", &self.preopen_ports)
            .field("mounts", &self.mounts)
            .field("queue_pos", &self.queue_pos)
            .field("gpu_alloc", &self.gpu_alloc)
            .field("home_vfolder", &self.home_vfolder)
            .field("ssh_host_key", &self.ssh_host_key.as_ref().map(|_| "***"))
            .field("ssh_host_pub", &self.ssh_host_pub)
            .field("ssh_error", &self.ssh_error)
            .finish()
    }
}

/// An app of a session and, once the container runs, where its port is published.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AppPort {
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub host: Option<std::net::SocketAddr>,
}

pub const SELECT: &str = "SELECT s.*, u.username AS owner_name, p.name AS project_name FROM sessions s JOIN users u ON u.id = s.owner_id LEFT JOIN projects p ON p.id = s.project_id";

impl SessionRow {
    pub fn status(&self) -> SessionStatus {
        SessionStatus::parse(&self.status).unwrap_or(SessionStatus::Error)
    }
    pub fn kind(&self) -> SessionType {
        SessionType::parse(&self.kind).unwrap_or_default()
    }
    pub fn resources(&self) -> Resources {
        Resources {
            cpu: Millicores(self.cpu_milli as u64),
            mem: Bytes(self.mem_bytes as u64),
            gpu: self.gpu as u32,
            gpu_shares: Shares(self.gpu_shares as u32),
        }
    }
    pub fn apps(&self) -> Vec<AppPort> {
        self.ports.0.clone()
    }

    pub fn gpu_hold(&self) -> GpuHold {
        self.gpu_alloc
            .as_ref()
            .map(|h| h.0.clone())
            .unwrap_or_default()
    }

    pub fn mounts(&self) -> Vec<api::vfolders::Mount> {
        self.mounts.0.clone()
    }

    pub fn env(&self) -> BTreeMap<String, String> {
        self.env.0.clone()
    }
    pub fn to_api(&self, queue_position: Option<u32>) -> Session {
        Session {
            id: self.id.clone(),
            name: self.name.clone(),
            owner: self.owner_id.clone(),
            owner_name: self.owner_name.clone(),
            project: self.project_name.clone(),
            kind: self.kind(),
            status: self.status(),
            status_reason: self.status_reason.clone(),
            image: self.image.clone(),
            resources: self.resources(),
            node: self.node.clone(),
            queue_position,
            container_id: self.container_id.clone(),
            exit_code: self.exit_code,
            apps: self
                .apps()
                .into_iter()
                // berth's own SSH server is no app of the image's (`ssh` below).
                .filter(|a| !crate::ssh::session::is_ssh_app(a))
                .map(|a| api::images::ServicePort {
                    name: a.name,
                    protocol: a.protocol,
                    port: a.port,
                })
                .collect(),
            mounts: self.mounts(),
            home: if self.home_vfolder.is_some() {
                api::session::HomeMode::Persistent
            } else {
                api::session::HomeMode::Clean
            },
            created_at: self.created_at.clone(),
            started_at: self.started_at.clone(),
            terminated_at: self.terminated_at.clone(),
            ssh: match (&self.ssh_host_pub, crate::ssh::session::has_ssh(self)) {
                (Some(k), true) => Some(api::ssh::SessionSsh {
                    host_key: k.clone(),
                    error: self.ssh_error.clone(),
                }),
                _ => None,
            },
        }
    }
}

pub async fn get(db: &Db, id: &str) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE s.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// `$first, $first+1, …`: `n` numbered placeholders for an `IN (…)` list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn with_status(db: &Db, statuses: &[SessionStatus]) -> sqlx::Result<Vec<SessionRow>> {
    let marks = placeholders(1, statuses.len());
    let sql = format!("{SELECT} WHERE s.status IN ({marks}) ORDER BY s.seq");
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for s in statuses {
        q = q.bind(s.as_str());
    }
    q.fetch_all(db).await
}

pub async fn live(db: &Db) -> sqlx::Result<Vec<SessionRow>> {
    let live: Vec<SessionStatus> = SessionStatus::ALL
        .into_iter()
        .filter(|s| s.is_live())
        .collect();
    with_status(db, &live).await
}

/// 1-based position among PENDING sessions, for a PENDING row.
pub async fn queue_position(db: &Db, row: &SessionRow) -> sqlx::Result<Option<u32>> {
    if row.status() != SessionStatus::Pending {
        return Ok(None);
    }
    if let Some(p) = row.queue_pos.filter(|p| *p > 0) {
        return Ok(Some(p as u32));
    }
    // Counts the ones ahead of it, not itself: the scheduler may have moved this row on
    // since it was read, and a PENDING row must never show position 0.
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE status = 'PENDING' AND seq < $1")
            .bind(row.seq)
            .fetch_one(db)
            .await?;
    Ok(Some(n as u32 + 1))
}

pub async fn to_api(db: &Db, row: &SessionRow) -> sqlx::Result<Session> {
    Ok(row.to_api(queue_position(db, row).await?))
}

pub async fn history(db: &Db, id: &str) -> sqlx::Result<Vec<HistoryEntry>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT status, reason, at FROM session_history WHERE session_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(status, reason, at)| HistoryEntry {
            status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Error),
            reason,
            at,
        })
        .collect())
}

/// A new PENDING session. The partial unique index refuses a live duplicate name.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub owner_id: &'a str,
    pub name: &'a str,
    pub kind: SessionType,
    pub project_id: Option<&'a str>,
    pub image: &'a str,
    pub resources: Resources,
    pub env: &'a BTreeMap<String, String>,
    pub command: Option<&'a str>,
    pub reason: &'a str,
    pub apps: &'a [api::images::ServicePort],
    pub app_secret: &'a str,
    pub mounts: &'a [api::vfolders::Mount],
    /// The home folder to mount at `/home/work` (`None`: clean).
    pub home_vfolder: Option<&'a str>,
}

pub async fn insert(db: &Db, s: NewSession<'_>) -> sqlx::Result<()> {
    let now = db::now();
    let mut tx = db.begin().await?;
    // Writing the instance row first serialises session inserts (SQLite's write lock,
    // PostgreSQL's row lock), so two racing inserts under READ COMMITTED never take one seq.
    sqlx::query("UPDATE meta SET value = value WHERE key = 'instance_id'")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO sessions(id, seq, owner_id, name, kind, image, cpu_milli, mem_bytes, gpu, gpu_shares,
                              env, command, status, status_reason, created_at, project_id, ports, app_secret, mounts, home_vfolder)
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'PENDING', $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(s.id)
    .bind(s.owner_id)
    .bind(s.name)
    .bind(s.kind.as_str())
    .bind(s.image)
    .bind(s.resources.cpu.0 as i64)
    .bind(s.resources.mem.0 as i64)
    .bind(i64::from(s.resources.gpu))
    .bind(i64::from(s.resources.gpu_shares.0))
    .bind(Json(s.env))
    .bind(s.command)
    .bind(s.reason)
    .bind(&now)
    .bind(s.project_id)
    .bind(Json(
        s.apps
            .iter()
            .map(|a| AppPort { name: a.name.clone(), protocol: a.protocol.clone(), port: a.port, host: None })
            .collect::<Vec<_>>(),
    ))
    .bind(s.app_secret)
    .bind(Json(s.mounts))
    .bind(s.home_vfolder)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO session_history(session_id, status, reason, at) VALUES ($1, 'PENDING', $2, $3)",
    )
    .bind(s.id)
    .bind(s.reason)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// What a transition may set besides status and reason.
#[derive(Debug, Default, Clone)]
pub struct Patch {
    pub node: Option<String>,
    /// The session's [`AppPort`]s with their published addresses.
    pub ports: Option<Json<Vec<AppPort>>>,
    pub container_id: Option<String>,
    pub exit_code: Option<i64>,
    pub logs: Option<String>,
    /// The devices a placement took.
    pub gpu_alloc: Option<Json<GpuHold>>,
}

/// The GPU devices a session holds on its node: whole devices, and `(device, hundredths)`
/// parts of shared ones.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct GpuHold {
    pub whole: Vec<usize>,
    pub shares: Vec<(usize, u32)>,
}

impl GpuHold {
    pub fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.shares.is_empty()
    }

    /// Shares held on device `i` (a whole device is 100).
    pub fn on(&self, i: usize) -> u32 {
        let whole = if self.whole.contains(&i) { 100 } else { 0 };
        whole
            + self
                .shares
                .iter()
                .filter(|(d, _)| *d == i)
                .map(|(_, s)| *s)
                .sum::<u32>()
    }

    /// The host devices held, in order.
    pub fn devices(&self) -> Vec<usize> {
        let mut d: Vec<usize> = self
            .whole
            .iter()
            .copied()
            .chain(self.shares.iter().map(|(d, _)| *d))
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// [`GpuHold::env`] as seen inside a container that was given only its devices (NVIDIA
    /// device requests): they are numbered from 0 there, in host order.
    pub fn env_in_container(&self) -> Vec<(String, String)> {
        let devices = self.devices();
        let pos = |d: usize| devices.iter().position(|x| *x == d).unwrap_or(0);
        GpuHold {
            whole: self.whole.iter().map(|d| pos(*d)).collect(),
            shares: self.shares.iter().map(|(d, s)| (pos(*d), *s)).collect(),
        }
        .env()
    }

    /// What the container is told: `CUDA_VISIBLE_DEVICES` and `BERTH_GPU_SHARES`
    /// (`DEVICE:FRACTION,…`, a whole device as `1`).
    pub fn env(&self) -> Vec<(String, String)> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut parts: Vec<(usize, String)> = self
            .whole
            .iter()
            .map(|d| (*d, "1".to_string()))
            .chain(
                self.shares
                    .iter()
                    .map(|(d, s)| (*d, api::Shares(*s).to_string())),
            )
            .collect();
        parts.sort();
        vec![
            (
                "CUDA_VISIBLE_DEVICES".into(),
                parts
                    .iter()
                    .map(|(d, _)| d.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "BERTH_GPU_SHARES".into(),
                parts
                    .iter()
                    .map(|(d, s)| format!("{d}:{s}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }
}

/// Moves a session to `to` if its current status may move there (the rule lives in
/// [`SessionStatus::can_move_to`]); records the history entry in the same transaction.
/// Returns false when the session was not in a state that allows the move.
pub async fn transition(
    db: &Db,
    id: &str,
    to: SessionStatus,
    reason: &str,
    patch: Patch,
) -> sqlx::Result<bool> {
    let from: Vec<&str> = SessionStatus::ALL
        .into_iter()
        .filter(|s| s.can_move_to(to))
        .map(|s| s.as_str())
        .collect();
    if from.is_empty() {
        return Ok(false);
    }
    let now = db::now();
    let marks = placeholders(14, from.len());
    let sql = format!(
        "UPDATE sessions SET status = $1, status_reason = $2,
            node = COALESCE($3, node), container_id = COALESCE($4, container_id),
            exit_code = COALESCE($5, exit_code), logs = COALESCE($6, logs), ports = COALESCE($7, ports),
            gpu_alloc = COALESCE($8, gpu_alloc),
            started_at = CASE WHEN $9 THEN $10 ELSE started_at END,
            terminated_at = CASE WHEN $11 THEN $12 ELSE terminated_at END
         WHERE id = $13 AND status IN ({marks})"
    );
    let mut tx = db.begin().await?;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(reason)
        .bind(patch.node)
        .bind(patch.container_id)
        .bind(patch.exit_code)
        .bind(patch.logs)
        .bind(patch.ports)
        .bind(patch.gpu_alloc)
        .bind(to == SessionStatus::Running)
        .bind(&now)
        .bind(to.is_final())
        .bind(&now)
        .bind(id);
    for f in &from {
        q = q.bind(*f);
    }
    let done = q.execute(&mut *tx).await?.rows_affected() == 1;
    if !done {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO session_history(session_id, status, reason, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(reason)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Updates the reason of a session without moving it (e.g. why it still waits).
/// Records a PENDING session's queue position; true when it changed.
pub async fn set_queue_pos(db: &Db, id: &str, pos: i64) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE sessions SET queue_pos = $1 WHERE id = $2 AND status = 'PENDING' AND queue_pos IS DISTINCT FROM $3",
    )
    .bind(pos)
    .bind(id)
    .bind(pos)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn set_reason(
    db: &Db,
    id: &str,
    status: SessionStatus,
    reason: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE sessions SET status_reason = $1 WHERE id = $2 AND status = $3 AND status_reason <> $4",
    )
    .bind(reason)
    .bind(id)
    .bind(status.as_str())
    .bind(reason)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records when a session last had terminal, app or tunnel traffic (never moving it back).
pub async fn touch(db: &Db, id: &str, at: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_activity_at = $1 WHERE id = $2 AND (last_activity_at IS NULL OR last_activity_at < $3)")
        .bind(at)
        .bind(id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::GpuHold;

    /// A session row written straight into a fresh database, JSON columns as given.
    async fn row_with(
        env: &str,
        ports: &str,
        mounts: &str,
    ) -> sqlx::Result<Option<super::SessionRow>> {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        sqlx::query("INSERT INTO users(id, username, password_hash, role, created_at) VALUES ('u1', 'alice', 'x', 'USER', '2026-01-01T00:00:00Z')")
            .execute(&db)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO sessions(id, seq, owner_id, name, kind, image, cpu_milli, mem_bytes, env, status, status_reason, created_at, ports, mounts, app_secret)
             VALUES ('s1', 1, 'u1', 'a', 'INTERACTIVE', 'berth/base', 1000, 1048576, $1, 'RUNNING', '', '2026-01-01T00:00:00Z', $2, $3, 'jupyter-token')",
        )
        .bind(env)
        .bind(ports)
        .bind(mounts)
        .execute(&db)
        .await
        .unwrap();
        super::get(&db, "s1").await
    }

    #[tokio::test]
    async fn json_columns_decode_and_a_corrupt_one_is_an_error_not_empty() {
        let row = row_with(
            r#"{"A":"1"}"#,
            r#"[{"name":"lab","protocol":"http","port":8888,"host":"127.0.0.1:40000"}]"#,
            r#"[{"vfolder":"f1","name":"data","path":"/home/work/data","mode":"rw"}]"#,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(row.env().get("A").map(String::as_str), Some("1"));
        let apps = row.apps();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].host, Some("127.0.0.1:40000".parse().unwrap()));
        assert_eq!(row.mounts().len(), 1, "{:?}", row.mounts);
        let shown = format!("{row:?}");
        assert!(shown.contains("app_secret: Some(\"***\")"), "{shown}");
        assert!(!shown.contains("jupyter-token"), "{shown}");
        for (env, ports, mounts) in [
            ("{not json", "[]", "[]"),
            ("{}", r#"[{"name":1}]"#, "[]"),
            ("{}", "[]", ""),
        ] {
            let got = row_with(env, ports, mounts).await;
            assert!(
                matches!(got, Err(sqlx::Error::ColumnDecode { .. })),
                "{env} {ports} {mounts:?}: {got:?}"
            );
        }
    }

    #[test]
    fn gpu_environment_on_declared_and_real_devices() {
        let h = GpuHold {
            whole: vec![2],
            shares: vec![(3, 15)],
        };
        let env = |v: Vec<(String, String)>| {
            v.into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            env(h.env()),
            ["CUDA_VISIBLE_DEVICES=2,3", "BERTH_GPU_SHARES=2:1,3:0.15"]
        );
        // Given only devices 2 and 3, the container numbers them 0 and 1.
        assert_eq!(
            env(h.env_in_container()),
            ["CUDA_VISIBLE_DEVICES=0,1", "BERTH_GPU_SHARES=0:1,1:0.15"]
        );
        assert_eq!(h.devices(), vec![2, 3]);
        assert_eq!(h.on(2), 100);
        assert_eq!(h.on(3), 15);
        assert!(GpuHold::default().env().is_empty());
    }
}
