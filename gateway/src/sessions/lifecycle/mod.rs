//! The session lifecycle: the gateway is the single writer of session state; Docker is the
//! truth about containers. One file per subsystem, each an `impl Lifecycle` block:
//! [`scheduling`] (the scheduler loop), [`preparing`] (creating and starting containers),
//! [`terminating`], [`reaping`] (policy lifetime and idle limits), [`events`] (container
//! deaths and nodes going down) and [`reconcile`] (agreeing with Docker at start and after
//! gaps). This file holds the state they share, the one way a status moves
//! ([`Lifecycle::transition`]), and the server's shutdown signal with the tasks it stops
//! ([`Lifecycle::shutdown`], [`Lifecycle::background`], `Lifecycle::work`,
//! [`Lifecycle::wait_tasks`]), and the leader's terms ([`Lifecycle::lead`]): with replicas on
//! PostgreSQL, the scheduler, reaper, sweeper and node watchers act only on the leader
//! (`crate::leader`), and the session work a term started is cut short when it ends.

mod events;
mod preparing;
mod reaping;
mod reconcile;
mod scheduling;
mod terminating;

use super::store::{self, Patch, SessionRow};
use crate::db::Db;
use crate::events::EventHub;
use crate::leader::Leadership;
use crate::nodes::registry::Nodes;
use crate::nodes::Node;
use api::session::SessionStatus;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsproxy::TerminalHub;

/// How much of a container's output is kept after it is removed.
const KEPT_LOG_BYTES: usize = 256 * 1024;

/// Why a session is being ended, for its status reason.
#[derive(Debug, Clone)]
pub enum EndCause {
    /// A person asked (owner or admin); their username.
    User(String),
    /// A policy ended it; the sentence says which and why.
    Policy(String),
}

impl EndCause {
    fn pending(&self) -> String {
        match self {
            Self::User(u) => format!("Withdrawn by {u} before it was scheduled."),
            Self::Policy(why) => why.clone(),
        }
    }
    fn running(&self) -> String {
        match self {
            Self::User(u) => format!("Termination requested by {u}."),
            Self::Policy(why) => why.clone(),
        }
    }
}

/// How long [`Lifecycle::transition`] keeps trying while the database does not answer.
const TRANSITION_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Statuses that hold a node's resources.
const HOLDING: [SessionStatus; 4] = [
    SessionStatus::Scheduled,
    SessionStatus::Preparing,
    SessionStatus::Running,
    SessionStatus::Terminating,
];

/// The session lifecycle's shared state; one per gateway, behind an `Arc`.
pub struct Lifecycle {
    db: Db,
    /// Where vfolders live, for mounts.
    storage: Arc<crate::vfolders::fs::Storage>,
    events: Arc<EventHub>,
    nodes: Arc<Nodes>,
    /// Queue order, node choice and the starvation rule of the scheduling pass.
    sched: scheduler::Config,
    terminals: Arc<TerminalHub>,
    /// The app proxy, whose port-mode listeners close with their session.
    apps: Arc<wsproxy::AppProxy>,
    /// Wakes the scheduler when a session is queued or resources are freed.
    wake: Notify,
    /// The images each node has, briefly cached: a session goes only where its image is.
    images: tokio::sync::Mutex<
        HashMap<String, (std::time::Instant, std::collections::HashSet<String>)>,
    >,
    /// The server's one shutdown signal: every background loop ends when it fires.
    shutdown: CancellationToken,
    /// Every task the lifecycle runs (loops and work in flight), so that a stopping server
    /// can wait for them to end.
    tasks: TaskTracker,
    /// Whether this process leads (always on SQLite).
    leadership: Arc<Leadership>,
    /// The current leader term: cancelled when this replica stops leading, which cuts short
    /// the leader loops and the session work started under it.
    term: Mutex<CancellationToken>,
    /// Session work in flight in this process (`Work` and session id): never twice at once.
    inflight: Arc<Mutex<HashSet<String>>>,
    /// The replicas' bus, on PostgreSQL.
    bus: OnceLock<Arc<crate::bus::Bus>>,
    /// Live stats of running sessions.
    stats: Arc<crate::stats::StatsHub>,
    /// Launch latency, scheduler passes and queue length.
    metrics: Arc<crate::metrics::Metrics>,
    /// The reaper's memory of each running session: when it was last seen busy, and the
    /// ending it last warned of (see `reaping`).
    watch: Mutex<reaping::Watched>,
}

/// The kinds of session work: one of each may be in flight per session and process (ending
/// a session while it starts is normal; starting it twice is not).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Work {
    /// Preparing: creating and starting the container.
    Start,
    /// Ending: removing the container.
    End,
}

/// Removes a session from the in-flight set when its work ends or is cut short.
struct InFlight(Arc<Mutex<HashSet<String>>>, String);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().expect("in-flight set").remove(&self.1);
    }
}

impl Lifecycle {
    /// The lifecycle over these parts; nothing runs until its loops are spawned.
    // Each argument is a part of the gateway that `serve` builds once and shares.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        storage: Arc<crate::vfolders::fs::Storage>,
        events: Arc<EventHub>,
        nodes: Arc<Nodes>,
        sched: scheduler::Config,
        terminals: Arc<TerminalHub>,
        apps: Arc<wsproxy::AppProxy>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Self> {
        // A replica on PostgreSQL follows until `leader::campaign` takes the lock; SQLite's
        // one process leads from the start.
        let leadership = Arc::new(if crate::leader::shared(&db) {
            Leadership::replica()
        } else {
            Leadership::sole()
        });
        Arc::new(Self {
            db,
            storage,
            nodes,
            sched,
            terminals,
            apps,
            wake: Notify::new(),
            images: Default::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            leadership,
            term: Mutex::new(CancellationToken::new()),
            inflight: Arc::default(),
            bus: OnceLock::new(),
            stats: Arc::new(crate::stats::StatsHub::new(events.clone())),
            watch: Mutex::default(),
            events,
            metrics,
        })
    }

    /// Connects the replicas' bus (PostgreSQL): from now on, session events and wakes go
    /// through it to every replica.
    pub fn set_bus(&self, bus: Arc<crate::bus::Bus>) {
        let _ = self.bus.set(bus);
    }

    /// The replicas' bus, on PostgreSQL.
    pub fn bus(&self) -> Option<&Arc<crate::bus::Bus>> {
        self.bus.get()
    }

    /// Whether this process leads, and when that changes.
    pub fn leadership(&self) -> &Arc<Leadership> {
        &self.leadership
    }

    /// Whether this process is the leader now.
    pub fn leads(&self) -> bool {
        self.leadership.is_leader()
    }

    /// Runs `task` (a leader loop) for the current leader term only; nothing on a follower.
    pub fn for_term(&self, task: impl Future<Output = ()> + Send + 'static) {
        if !self.leads() {
            return;
        }
        let term = self.term.lock().expect("term").clone();
        self.background(async move {
            tokio::select! {
                _ = term.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Follows a node's container events while this process leads.
    pub fn watch(self: &Arc<Self>, node: Arc<dyn Node>) {
        self.for_term(self.clone().watch_node(node));
    }

    /// The leader's terms, until shutdown: each time this process becomes the leader, the
    /// node watchers start and (unless `reconciled`, for the first term, whose recovery ran
    /// before serving) what another leader left half-done is taken up, as at a restart —
    /// after [`crate::leader::TAKEOVER_GRACE`] on a shared database, so that a live
    /// ex-leader has stopped first. When the term ends, its loops and work are cut short.
    pub async fn lead(self: Arc<Self>, mut reconciled: bool) {
        let mut rx = self.leadership.subscribe();
        loop {
            if rx.wait_for(|l| *l).await.is_err() {
                return;
            }
            let term = self.term.lock().expect("term").clone();
            for n in self.nodes.all() {
                self.watch(n);
            }
            self.for_term(crate::stats::sample_running(self.clone()));
            if !reconciled {
                let me = self.clone();
                let shared = self.leadership.shared;
                self.for_term(async move {
                    if shared {
                        tokio::time::sleep(crate::leader::TAKEOVER_GRACE).await;
                    }
                    tracing::info!("taking up what the previous leader left");
                    if let Err(e) = me.reconcile(true).await {
                        tracing::warn!(error = %e, "reconciling as the new leader failed");
                    }
                });
            }
            reconciled = false;
            if rx.wait_for(|l| !*l).await.is_err() {
                return;
            }
            term.cancel();
            *self.term.lock().expect("term") = CancellationToken::new();
        }
    }

    /// The server's one shutdown signal, made with the lifecycle: cancelling it stops the
    /// server (see [`crate::serve`]).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Runs `task`, a loop meant to last as long as the server, until the shutdown signal.
    pub fn background(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Runs one piece of work (preparing or ending session `id`) to its end; a stopping server
    /// waits for it (bounded), and one cut short by a kill is taken up again at the next start.
    /// Work of a kind already in flight here for that session is dropped. Started on the
    /// leader, it is cut short when the term ends (the next leader takes it up); only the
    /// leader starts sessions.
    pub(crate) fn work(
        &self,
        kind: Work,
        id: &str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        // Starting is the leader's alone: a start asked for just after this process stopped
        // leading (a scheduling pass that straddled the end of its term) is left to the next
        // leader, which takes up SCHEDULED and PREPARING sessions.
        let term = if self.leads() {
            self.term.lock().expect("term").clone()
        } else if matches!(kind, Work::Start) {
            tracing::info!(session = %id, "not the leader any more: starting it is left to the leader");
            return;
        } else {
            CancellationToken::new()
        };
        let key = format!("{kind:?} {id}");
        if !self
            .inflight
            .lock()
            .expect("in-flight set")
            .insert(key.clone())
        {
            tracing::debug!(session = %id, ?kind, "this work is already in flight here");
            return;
        }
        let guard = InFlight(self.inflight.clone(), key);
        self.tasks.spawn(async move {
            let _guard = guard;
            tokio::select! {
                _ = term.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// After the shutdown signal: waits at most `bound` for every loop to stop and the work
    /// in flight to finish. False if some did not in time.
    pub async fn wait_tasks(&self, bound: std::time::Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(bound, self.tasks.wait()).await.is_ok()
    }

    /// The connected nodes.
    pub fn nodes(&self) -> &Arc<Nodes> {
        &self.nodes
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The node a session was placed on, while it is connected.
    pub fn node_of(&self, row: &SessionRow) -> Option<Arc<dyn Node>> {
        row.node.as_deref().and_then(|n| self.nodes.get(n))
    }

    /// The node whose images the launcher offers: the local engine, else any connected one.
    pub fn image_node(&self) -> Option<Arc<dyn Node>> {
        self.nodes
            .get(crate::nodes::LOCAL)
            .or_else(|| self.nodes.all().into_iter().next())
    }

    /// Publishes the current JSON of a session to browsers: through the bus to every replica
    /// on PostgreSQL, else here.
    pub async fn publish(&self, id: &str) {
        let Some((owner, json)) = self.session_json(id).await else {
            return;
        };
        match self.bus.get() {
            Some(bus) => bus.session(id, &owner, &json),
            None => self.publish_json(None, &owner, json),
        }
    }

    /// Live stats of running sessions.
    pub fn stats(&self) -> &Arc<crate::stats::StatsHub> {
        &self.stats
    }

    /// Publishes a passing event (`stats`, `ending`) to `owner_id`'s streams on every
    /// replica: through the bus on PostgreSQL, else here.
    pub fn publish_passing(&self, kind: &'static str, owner_id: &str, json: String) {
        match self.bus.get() {
            Some(bus) => bus.passing(kind, owner_id, &json),
            None => self.passing_here(kind, owner_id, json),
        }
    }

    /// A passing event on this replica: a stats sample is kept (and sent to the streams by
    /// the stats hub); an `ending` goes to the streams; any other kind is ignored.
    pub fn passing_here(&self, kind: &str, owner_id: &str, json: String) {
        match kind {
            "stats" => {
                if let Ok(sample) = serde_json::from_str(&json) {
                    self.stats.record_json(owner_id, sample, json);
                }
            }
            "ending" => self.events.publish_unnumbered("ending", owner_id, json),
            _ => {}
        }
    }

    /// Reads a session again and publishes it here under event id `seq` (the bus's).
    pub async fn publish_here(&self, id: &str, seq: Option<u64>) {
        if let Some((owner, json)) = self.session_json(id).await {
            self.publish_json(seq, &owner, json);
        }
    }

    /// Publishes a session's JSON to this process's event streams, under event id `seq` when
    /// the bus gave one.
    pub fn publish_json(&self, seq: Option<u64>, owner_id: &str, json: String) {
        self.events.publish_as(seq, "session", owner_id, json);
    }

    /// A session's owner and current JSON.
    async fn session_json(&self, id: &str) -> Option<(String, String)> {
        match store::get(&self.db, id).await {
            Ok(Some(row)) => match store::to_api(&self.db, &row).await {
                Ok(s) => Some((row.owner_id, serde_json::to_string(&s).unwrap_or_default())),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot publish a session");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish a session");
                None
            }
        }
    }

    /// Moves a session, records why, tells browsers. False if the move was not allowed now.
    pub async fn transition(
        &self,
        id: &str,
        to: SessionStatus,
        reason: &str,
        patch: Patch,
    ) -> bool {
        // A database that is away (PostgreSQL restarting, a connection cut) is waited for: a
        // status change given up would leave the session stuck between states, and "false"
        // would tell the caller the move was refused. Work on the leader is cut short anyway
        // when the lock's connection fails; the next leader takes it up.
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(100);
        let mut failed_before = false;
        loop {
            let outcome = match store::transition(&self.db, id, to, reason, patch.clone()).await {
                // A commit whose answer was lost looks refused when tried again: it is done
                // if the row already has the status.
                Ok(false) if failed_before => Ok(matches!(
                    store::get(&self.db, id).await,
                    Ok(Some(row)) if row.status() == to
                )),
                other => other,
            };
            match outcome {
                Ok(true) => {
                    tracing::info!(session = %id, status = %to, reason, "session status");
                    if to.is_final() {
                        self.stats.forget(id);
                        self.terminals.close_session(id);
                        self.apps.forget_session(id);
                        self.wake();
                    }
                    self.publish(id).await;
                    return true;
                }
                Ok(false) => return false,
                Err(e) if started.elapsed() < TRANSITION_PATIENCE => {
                    failed_before = true;
                    tracing::warn!(session = %id, status = %to, error = %e, "cannot record a status change yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(session = %id, status = %to, error = %e, "cannot record a status change");
                    return false;
                }
            }
        }
    }

    /// Asks the scheduler to look at the queue: the leader's, wherever it runs.
    pub fn wake(&self) {
        self.wake.notify_one();
        if let Some(bus) = self.bus.get() {
            bus.wake();
        }
    }

    /// Wakes this process's scheduler (which acts only while it leads).
    pub fn wake_here(&self) {
        self.wake.notify_one();
    }
}
