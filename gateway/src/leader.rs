//! Leadership: with several `berth serve` replicas on one PostgreSQL database, exactly one of
//! them — the leader — runs the scheduling pass, the reaper, the reconciling sweep, the node
//! health checks and the Docker event watchers ([`crate::serve`] starts them for each term).
//! Every replica answers every API call.
//!
//! The leader is whoever holds a session-level advisory lock ([`LOCK_KEY`], scoped to the
//! database) on a connection of its own. Followers try to take it every [`RETRY`]. The leader
//! checks its connection every [`PING`] (each check bounded by [`PING`] too): when the check
//! fails (PostgreSQL restarted, the network went) it stops leading at once — its leader loops
//! and the session work they started are cut short, as if killed — and campaigns again. When a
//! leader dies, PostgreSQL sees its socket close and frees the lock; a follower takes it within
//! [`RETRY`], then waits [`TAKEOVER_GRACE`] (longer than a live ex-leader needs to notice it
//! lost the lock) before recovering what the old leader left half-done (`Lifecycle::reconcile`
//! as at a restart). So a failover takes about [`RETRY`] + [`TAKEOVER_GRACE`], under 10 s.
//!
//! On SQLite there is one process per data dir (`berth.lock`), always the leader.

use crate::db::{self, Db};
use sqlx::{Connection, PgConnection};
use std::time::Duration;
use tokio::sync::watch;

/// The advisory lock's key ("berth" in ASCII); advisory locks are per database, so two berth
/// installations on two databases of one server do not contend.
pub const LOCK_KEY: i64 = 0x62_65_72_74_68;
/// How often a follower tries to take the lock.
pub const RETRY: Duration = Duration::from_secs(2);
/// How often (and within how long) the leader checks the connection holding the lock.
pub const PING: Duration = Duration::from_millis(500);
/// How long a new leader waits before taking up another replica's work: a live ex-leader has
/// noticed its lost lock within two [`PING`]s and stopped its work by then.
pub const TAKEOVER_GRACE: Duration = Duration::from_secs(2);

/// Whether this process leads now; `watch` so that the leader loops can follow changes.
pub struct Leadership {
    tx: watch::Sender<bool>,
    /// Whether another replica may have led before (PostgreSQL): then a new term waits
    /// [`TAKEOVER_GRACE`] before recovering.
    pub shared: bool,
}

impl Leadership {
    /// The single SQLite process: the leader from the start.
    pub fn sole() -> Self {
        Self {
            tx: watch::channel(true).0,
            shared: false,
        }
    }

    /// A replica on a shared database: a follower until [`campaign`] takes the lock.
    pub fn replica() -> Self {
        Self {
            tx: watch::channel(false).0,
            shared: true,
        }
    }

    /// Whether this process leads now.
    pub fn is_leader(&self) -> bool {
        *self.tx.borrow()
    }

    /// Follows changes of [`Leadership::is_leader`].
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    fn set(&self, leader: bool) {
        self.tx.send_if_modified(|v| {
            let changed = *v != leader;
            *v = leader;
            changed
        });
    }
}

/// Takes the lock when it is free and holds it while the connection lives; runs until the
/// server stops (under `Lifecycle::background`). Only for PostgreSQL.
pub async fn campaign(db: Db, me: std::sync::Arc<Leadership>, replica: String) {
    let url = db.connect_options().database_url.to_string();
    loop {
        match hold(&url, &me, &replica).await {
            Ok(()) => {}
            Err(e) => tracing::debug!(error = %e, "leadership: cannot reach the database"),
        }
        if me.is_leader() {
            tracing::warn!(replica = %replica, "this replica lost the leader lock; its leader work stops");
            me.set(false);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection's life: tries the lock every [`RETRY`], then holds it, pinging every
/// [`PING`]. Returns when the connection fails.
async fn hold(url: &str, me: &Leadership, replica: &str) -> anyhow::Result<()> {
    let mut conn = tokio::time::timeout(RETRY * 2, PgConnection::connect(url)).await??;
    loop {
        let (got,): (bool,) = tokio::time::timeout(
            RETRY,
            sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut conn),
        )
        .await??;
        if got {
            break;
        }
        tokio::time::sleep(RETRY).await;
    }
    tracing::info!(replica = %replica, "this replica is the leader now");
    me.set(true);
    loop {
        tokio::time::sleep(PING).await;
        let ping = tokio::time::timeout(PING, sqlx::query("SELECT 1").execute(&mut conn)).await;
        match ping {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => anyhow::bail!("the lock's connection did not answer within {PING:?}"),
        }
    }
}

/// This process's replica name in logs: host and process id.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}", std::process::id())
}

/// On SQLite, the data dir may be served by one process only: an exclusive lock on
/// `berth.lock` there, held for the life of the process (the returned file).
pub fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("berth.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another berth serve already uses the data directory {} (SQLite serves one process; \
             run replicas on PostgreSQL with --database-url)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
}

/// Whether `db` is shared between replicas (PostgreSQL).
pub fn shared(db: &Db) -> bool {
    db::backend(db) == db::Backend::Postgres
}
