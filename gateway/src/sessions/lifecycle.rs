//! The session lifecycle: the scheduler loop, preparing containers, terminating, reacting to
//! containers that die, and reconciling with Docker at start. The gateway is the single
//! writer of session state; Docker is the truth about containers.

use super::store::{self, Patch, SessionRow};
use crate::db::Db;
use crate::events::EventHub;
use crate::node::registry::Nodes;
use crate::node::{ContainerSpec, Node, NodeEvent};
use api::session::{SessionStatus, SessionType};
use api::Resources;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
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

/// Statuses that hold a node's resources.
const HOLDING: [SessionStatus; 4] = [
    SessionStatus::Scheduled,
    SessionStatus::Preparing,
    SessionStatus::Running,
    SessionStatus::Terminating,
];

/// How often lifetime and idle limits are checked.
const REAP_EVERY: Duration = Duration::from_secs(2);

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
}

impl Lifecycle {
    pub fn new(
        db: Db,
        storage: Arc<crate::vfolders::fs::Storage>,
        events: Arc<EventHub>,
        nodes: Arc<Nodes>,
        sched: scheduler::Config,
        terminals: Arc<TerminalHub>,
        apps: Arc<wsproxy::AppProxy>,
    ) -> Arc<Self> {
        Arc::new(Self {
            db,
            storage,
            events,
            nodes,
            sched,
            terminals,
            apps,
            wake: Notify::new(),
            images: Default::default(),
        })
    }

    pub fn nodes(&self) -> &Arc<Nodes> {
        &self.nodes
    }

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

    /// Publishes the current JSON of a session to browsers.
    pub async fn publish(&self, id: &str) {
        match store::get(&self.db, id).await {
            Ok(Some(row)) => match store::to_api(&self.db, &row).await {
                Ok(s) => self.events.publish(
                    "session",
                    &row.owner_id,
                    serde_json::to_string(&s).unwrap_or_default(),
                ),
                Err(e) => tracing::warn!(error = %e, "cannot publish a session"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot publish a session"),
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
        match store::transition(&self.db, id, to, reason, patch).await {
            Ok(true) => {
                tracing::info!(session = %id, status = %to, reason, "session status");
                if to.is_final() {
                    self.terminals.close_session(id);
                    self.apps.forget_session(id);
                    self.wake.notify_one();
                }
                self.publish(id).await;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(session = %id, error = %e, "cannot record a status change");
                false
            }
        }
    }

    /// Asks the scheduler to look at the queue.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The scheduler: FIFO over PENDING sessions, placing each where it fits.
    pub async fn run_scheduler(self: Arc<Self>) {
        loop {
            if let Err(e) = self.schedule_once().await {
                tracing::error!(error = %e, "scheduler pass failed");
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }

    async fn schedule_once(self: &Arc<Self>) -> anyhow::Result<()> {
        let pending = store::with_status(&self.db, &[SessionStatus::Pending]).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let holding = store::with_status(&self.db, &HOLDING).await?;
        let rows = crate::nodes::rows(&self.db).await?;
        let views: Vec<scheduler::NodeView> = rows
            .iter()
            .map(|r| {
                let on: Vec<&SessionRow> = holding
                    .iter()
                    .filter(|s| s.node.as_deref() == Some(r.name.as_str()))
                    .collect();
                scheduler::NodeView {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    group: r.grp.clone(),
                    schedulable: r.schedulable() && self.nodes.get(&r.name).is_some(),
                    capacity: r.capacity(),
                    allocated: on
                        .iter()
                        .fold(Resources::default(), |acc, s| acc.add(&s.resources())),
                    gpus: (0..r.gpus.max(0) as usize)
                        .map(|i| scheduler::Gpu {
                            free: api::Shares(
                                100u32.saturating_sub(on.iter().map(|s| s.gpu_hold().on(i)).sum()),
                            ),
                        })
                        .collect(),
                    accepts_mounts: r.reaches_storage(),
                }
            })
            .collect();
        // Per owner: live sessions past the queue and what they hold, for the policy check.
        let mut owners: HashMap<String, scheduler::OwnerState> = HashMap::new();
        for s in pending.iter().chain(&holding) {
            if !owners.contains_key(&s.owner_id) {
                let policy = crate::policy::effective(&self.db, &s.owner_id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    .policy;
                owners.insert(
                    s.owner_id.clone(),
                    scheduler::OwnerState {
                        policy,
                        running: 0,
                        held: Resources::default(),
                    },
                );
            }
        }
        for h in &holding {
            if let Some(o) = owners.get_mut(&h.owner_id) {
                o.running += 1;
                o.held = o.held.add(&h.resources());
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let queue: Vec<scheduler::Request> = pending
            .iter()
            .map(|s| scheduler::Request {
                session_id: s.id.clone(),
                owner: s.owner_id.clone(),
                seq: s.seq as u64,
                resources: s.resources(),
                needs_local_storage: !s.mounts().is_empty(),
                allowed_groups: owners
                    .get(&s.owner_id)
                    .and_then(|o| o.policy.allowed_node_groups.clone()),
                waited_s: crate::db::parse_time(&s.created_at)
                    .map_or(0, |t| (now - t).whole_seconds().max(0) as u64),
            })
            .collect();
        let (views, queue, limited) = self.only_where_images_are(views, queue, &pending).await;
        let out = scheduler::pass(&views, &queue, &owners, &self.sched);
        let by_id: HashMap<&str, &SessionRow> =
            pending.iter().map(|s| (s.id.as_str(), s)).collect();
        for p in &out.placed {
            let Some(s) = by_id.get(p.session_id.as_str()) else {
                continue;
            };
            let name = views
                .iter()
                .find(|n| n.id == p.node_id)
                .map(|n| n.name.clone())
                .unwrap_or_default();
            let reason = format!("Placed on node {name} ({}).", p.resources.summary());
            let hold = store::GpuHold {
                whole: p.gpu.whole.clone(),
                shares: p
                    .gpu
                    .shares
                    .iter()
                    .map(|x| (x.device, x.shares.0))
                    .collect(),
            };
            let patch_gpu =
                (!hold.is_empty()).then(|| serde_json::to_string(&hold).unwrap_or_default());
            let patch = Patch {
                node: Some(name.clone()),
                gpu_alloc: patch_gpu.clone(),
                ..Default::default()
            };
            if self
                .transition(&s.id, SessionStatus::Scheduled, &reason, patch)
                .await
            {
                let me = self.clone();
                let mut row = (*s).clone();
                row.node = Some(name);
                row.gpu_alloc = patch_gpu;
                tokio::spawn(async move { me.prepare(row).await });
            }
        }
        for w in &out.waiting {
            // A group wait here means "not on a node with its image": say that instead.
            let reason = match limited.get(&w.session_id) {
                Some(why) if w.reason.contains("allowed groups") => why.as_str(),
                _ => w.reason.as_str(),
            };
            let changed = store::set_queue_pos(&self.db, &w.session_id, w.position as i64).await?;
            let reason =
                store::set_reason(&self.db, &w.session_id, SessionStatus::Pending, reason).await?;
            if changed || reason {
                self.publish(&w.session_id).await;
            }
        }
        Ok(())
    }

    /// The image names a node has (cached for 10 s); `None` when it cannot say.
    async fn images_on(&self, node: &str) -> Option<std::collections::HashSet<String>> {
        let mut cache = self.images.lock().await;
        if let Some((at, set)) = cache.get(node) {
            if at.elapsed() < Duration::from_secs(10) {
                return Some(set.clone());
            }
        }
        let n = self.nodes.get(node)?;
        let list = tokio::time::timeout(Duration::from_secs(4), n.list_images())
            .await
            .ok()?
            .ok()?;
        let set: std::collections::HashSet<String> = list.into_iter().map(|i| i.name).collect();
        cache.insert(node.to_string(), (std::time::Instant::now(), set.clone()));
        Some(set)
    }

    /// When some schedulable node lacks a pending session's image, each node becomes a group
    /// of its own and every request is limited to the nodes that have its image (and are in
    /// its owner's allowed groups), so a session never lands where its image is missing and
    /// never blocks the others. When every node has every image, nothing changes.
    async fn only_where_images_are(
        &self,
        mut views: Vec<scheduler::NodeView>,
        mut queue: Vec<scheduler::Request>,
        pending: &[SessionRow],
    ) -> (
        Vec<scheduler::NodeView>,
        Vec<scheduler::Request>,
        HashMap<String, String>,
    ) {
        let mut has: HashMap<String, Option<std::collections::HashSet<String>>> = HashMap::new();
        for v in views.iter().filter(|v| v.schedulable) {
            has.insert(v.name.clone(), self.images_on(&v.name).await);
        }
        let image_of: HashMap<&str, &str> = pending
            .iter()
            .map(|s| (s.id.as_str(), s.image.as_str()))
            .collect();
        let lacks = |node: &str, image: &str| {
            has.get(node)
                .and_then(|o| o.as_ref())
                .is_some_and(|set| !set.contains(image))
        };
        let any_missing = queue.iter().any(|r| {
            let img = image_of
                .get(r.session_id.as_str())
                .copied()
                .unwrap_or_default();
            views.iter().any(|v| v.schedulable && lacks(&v.name, img))
        });
        let mut limited = HashMap::new();
        if !any_missing {
            return (views, queue, limited);
        }
        for r in &mut queue {
            let img = image_of
                .get(r.session_id.as_str())
                .copied()
                .unwrap_or_default();
            let allowed: Vec<String> = views
                .iter()
                .filter(|v| !lacks(&v.name, img))
                .filter(|v| match &r.allowed_groups {
                    None => true,
                    Some(groups) => v.group.as_ref().is_some_and(|g| groups.contains(g)),
                })
                .map(|v| v.name.clone())
                .collect();
            // The sentence a session limited this way shows when it must wait.
            let why = if allowed.is_empty() {
                format!("Waiting: no node that is up and open to you has image {img}; load it on one (docker save | docker load).")
            } else {
                format!(
                    "Waiting: image {img} is only on {}, and none of them has room now.",
                    allowed.join(", ")
                )
            };
            limited.insert(r.session_id.clone(), why);
            r.allowed_groups = Some(allowed);
        }
        for v in &mut views {
            v.group = Some(v.name.clone());
        }
        (views, queue, limited)
    }

    /// `Err(sentence)` when the session's owner is disabled or may no longer mount one of
    /// its folders as asked.
    async fn owner_may_start(&self, s: &SessionRow) -> anyhow::Result<Result<(), String>> {
        let owner: Option<crate::auth::UserRow> =
            sqlx::query_as("SELECT * FROM users WHERE id = ?")
                .bind(&s.owner_id)
                .fetch_optional(&self.db)
                .await?;
        let Some(owner) = owner.filter(|o| !o.disabled) else {
            return Ok(Err(
                "The owner's account is disabled, so no container was created.".into(),
            ));
        };
        let owner = crate::auth::CurrentUser {
            role: owner.role(),
            id: owner.id,
            username: owner.username,
            via_key: false,
            since: 0,
        };
        crate::vfolders::mounts::recheck(&self.db, &owner, &s.mounts())
            .await
            .map_err(|e| {
                // The cause goes to the log; the session's reason stays a sentence.
                tracing::warn!(session = %s.id, "rechecking mounts failed: {e:?}");
                anyhow::anyhow!("the folders could not be looked up")
            })
    }

    /// Cancels every PENDING session of `owner_id` (their account was disabled) with
    /// `reason`. One scheduled meanwhile is refused when it is prepared instead.
    pub async fn cancel_pending_of(&self, owner_id: &str, reason: &str) -> anyhow::Result<()> {
        for s in store::with_status(&self.db, &[SessionStatus::Pending]).await? {
            if s.owner_id == owner_id {
                self.transition(&s.id, SessionStatus::Cancelled, reason, Patch::default())
                    .await;
            }
        }
        Ok(())
    }

    /// SCHEDULED → PREPARING → RUNNING: creates and starts the container.
    async fn prepare(self: Arc<Self>, s: SessionRow) {
        let reason = format!("Creating the container from {}.", s.image);
        if !self
            .transition(&s.id, SessionStatus::Preparing, &reason, Patch::default())
            .await
        {
            return;
        }
        // The owner and their folders are checked again now: access may have gone while
        // the session waited in the queue.
        let refused = match self.owner_may_start(&s).await {
            Ok(r) => r,
            Err(e) => Err(format!("The owner's access could not be checked: {e}.")),
        };
        if let Err(reason) = refused {
            self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                .await;
            return;
        }
        // The owner's process limit as it is now (a policy change applies to the next launch).
        // Unreadable, the built-in limit applies: a container is never created unbounded
        // by accident.
        let max_processes = match crate::policy::effective(&self.db, &s.owner_id).await {
            Ok(p) => p.policy.max_processes,
            Err(e) => {
                tracing::warn!(session = %s.id, "reading the owner's policy failed: {e:?}");
                Some(api::policy::DEFAULT_MAX_PROCESSES)
            }
        };
        let spec = ContainerSpec {
            max_processes,
            session_id: s.id.clone(),
            owner_id: s.owner_id.clone(),
            image: s.image.clone(),
            kind: s.kind(),
            resources: s.resources(),
            // Devices a node declares in configuration reach the container as environment
            // only; real NVIDIA devices also as device requests, renumbered from 0 inside.
            env: s
                .env()
                .into_iter()
                .chain(if self.node_of(&s).is_some_and(|n| n.real_gpus()) {
                    s.gpu_hold().env_in_container()
                } else {
                    s.gpu_hold().env()
                })
                .collect(),
            gpu_devices: s.gpu_hold().devices(),
            gpu_share: s.gpu_hold().shares.iter().map(|(_, p)| *p).max(),
            command: s.command.clone(),
            ports: s.apps().iter().map(|a| a.port).collect(),
            app_secret: s.app_secret.clone().unwrap_or_default(),
            mounts: s
                .mounts()
                .into_iter()
                .map(|m| crate::node::BindMount {
                    host: self.storage.folder_dir(&m.vfolder),
                    read_only: m.mode == "ro",
                    target: m.path,
                })
                .collect(),
        };
        let Some(node) = self.node_of(&s) else {
            let reason = format!(
                "Node {} is not connected, so the container could not be created.",
                s.node.as_deref().unwrap_or("(none)")
            );
            self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                .await;
            return;
        };
        match node.start_session(&spec).await {
            Ok(cid) => {
                let patch = Patch {
                    ports: self.published(&s, &cid).await,
                    container_id: Some(cid),
                    ..Default::default()
                };
                if !self
                    .transition(
                        &s.id,
                        SessionStatus::Running,
                        "The container is running.",
                        patch,
                    )
                    .await
                {
                    // Terminated while we were creating it: the container must not outlive it.
                    let _ = node.remove_session(&s.id).await;
                }
            }
            Err(e) => {
                let _ = node.remove_session(&s.id).await;
                // A termination requested meanwhile removes the container being started,
                // which is why starting it failed: that is no error, and finish_terminate
                // records the end (TERMINATING was committed before that removal began).
                let terminating = matches!(
                    store::get(&self.db, &s.id).await,
                    Ok(Some(row)) if row.status() == SessionStatus::Terminating
                );
                if !terminating {
                    self.transition(&s.id, SessionStatus::Error, &e.0, Patch::default())
                        .await;
                }
            }
        }
    }

    /// The session's apps with the addresses their ports were published at.
    async fn published(&self, s: &SessionRow, container_id: &str) -> Option<String> {
        let apps = s.apps();
        // Nothing published: no need to ask the engine (one round trip off every launch).
        if apps.is_empty() {
            return serde_json::to_string(&apps).ok();
        }
        let published = self.node_of(s)?.published_ports(container_id).await.ok()?;
        let apps: Vec<store::AppPort> = apps
            .into_iter()
            .map(|mut a| {
                a.host = published
                    .iter()
                    .find(|(p, _)| *p == a.port)
                    .map(|(_, h)| *h);
                a
            })
            .collect();
        serde_json::to_string(&apps).ok()
    }

    /// Ends a session on request. Idempotent: a session already ending or ended is left be.
    pub async fn terminate(self: &Arc<Self>, id: &str, cause: &EndCause) -> anyhow::Result<()> {
        let Some(row) = store::get(&self.db, id).await? else {
            return Ok(());
        };
        match row.status() {
            SessionStatus::Pending => {
                let reason = cause.pending();
                if !self
                    .transition(id, SessionStatus::Cancelled, &reason, Patch::default())
                    .await
                {
                    // It was scheduled meanwhile: terminate it like a started one.
                    return Box::pin(self.terminate(id, cause)).await;
                }
            }
            SessionStatus::Scheduled | SessionStatus::Preparing | SessionStatus::Running => {
                let reason = cause.running();
                if self
                    .transition(id, SessionStatus::Terminating, &reason, Patch::default())
                    .await
                {
                    let me = self.clone();
                    let id = id.to_string();
                    tokio::spawn(async move { me.finish_terminate(&id).await });
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn keep_logs(&self, row: &SessionRow) -> Option<String> {
        self.node_of(row)?.logs(&row.id, KEPT_LOG_BYTES).await.ok()
    }

    /// TERMINATING → TERMINATED once every container of the session is gone.
    async fn finish_terminate(&self, id: &str) {
        let (logs, why, node) = match store::get(&self.db, id).await {
            Ok(Some(row)) => (
                self.keep_logs(&row).await,
                row.status_reason.clone(),
                self.node_of(&row),
            ),
            _ => (None, String::new(), None),
        };
        // The final reason keeps the cause (who or which policy ended it).
        let done = format!("{why} The container was removed.")
            .trim()
            .to_string();
        let mut last_err = None;
        for attempt in 0..5u64 {
            let removed = match &node {
                Some(n) => n.remove_session(id).await,
                // Never placed, or its node is gone: there is no container to remove.
                None => Ok(()),
            };
            match removed {
                Ok(()) => {
                    let patch = Patch {
                        logs,
                        ..Default::default()
                    };
                    self.transition(id, SessionStatus::Terminated, &done, patch)
                        .await;
                    return;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
                }
            }
        }
        let reason = format!(
            "The container could not be removed: {}. berth removes it when Docker answers again.",
            last_err.map(|e| e.0).unwrap_or_default()
        );
        self.transition(id, SessionStatus::Error, &reason, Patch::default())
            .await;
    }

    /// Ends RUNNING sessions past their policy's lifetime or idle timeout, after recording
    /// the terminal activity the proxy saw. Runs for as long as the process lives.
    pub async fn run_reaper(self: Arc<Self>) {
        loop {
            tokio::time::sleep(REAP_EVERY).await;
            if let Err(e) = self.reap_once().await {
                tracing::warn!(error = %e, "policy check failed");
            }
        }
    }

    async fn reap_once(self: &Arc<Self>) -> anyhow::Result<()> {
        for (id, at) in self.terminals.take_activity() {
            store::touch(&self.db, &id, &crate::db::format_time(at.into())).await?;
        }
        let now = time::OffsetDateTime::now_utc();
        let mut policies: HashMap<String, api::policy::Policy> = HashMap::new();
        for s in store::with_status(&self.db, &[SessionStatus::Running]).await? {
            let policy = match policies.get(&s.owner_id) {
                Some(p) => p.clone(),
                None => {
                    let p = crate::policy::effective(&self.db, &s.owner_id)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?
                        .policy;
                    policies.insert(s.owner_id.clone(), p.clone());
                    p
                }
            };
            let Some(started) = s.started_at.as_deref().and_then(crate::db::parse_time) else {
                continue;
            };
            let active = s
                .last_activity_at
                .as_deref()
                .and_then(crate::db::parse_time)
                .map_or(started, |a| a.max(started));
            let cause = if let Some(max) = policy
                .max_session_lifetime_s
                .filter(|&m| (now - started).whole_seconds() >= m as i64)
            {
                Some(format!(
                    "The session reached the maximum lifetime of {max} s set by its policy."
                ))
            } else {
                policy
                    .idle_timeout_s
                    .filter(|&m| (now - active).whole_seconds() >= m as i64)
                    .map(|m| format!("The session was idle (no terminal or app traffic) for {m} s, the idle timeout of its policy."))
            };
            if let Some(why) = cause {
                self.terminate(&s.id, &EndCause::Policy(why)).await?;
            }
        }
        Ok(())
    }

    /// A session's container ended on its own.
    async fn container_died(&self, row: &SessionRow, exit_code: Option<i64>, oom: bool) {
        if !matches!(
            row.status(),
            SessionStatus::Running | SessionStatus::Preparing
        ) {
            return;
        }
        let logs = self.keep_logs(row).await;
        let code = exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into());
        let batch = row.kind() == SessionType::Batch;
        if batch && !oom && row.status() == SessionStatus::Preparing {
            // A quick command can finish before RUNNING was recorded: record that it ran.
            self.transition(
                &row.id,
                SessionStatus::Running,
                "The command started.",
                Patch::default(),
            )
            .await;
        }
        let (to, reason) = if oom {
            (
                SessionStatus::Error,
                format!(
                    "The container ran out of memory ({} limit) and was killed.",
                    row.resources().mem.human()
                ),
            )
        } else if batch {
            (
                SessionStatus::Terminated,
                format!("The command exited with code {code}."),
            )
        } else {
            (
                SessionStatus::Error,
                format!("The container exited unexpectedly with code {code}."),
            )
        };
        let patch = Patch {
            exit_code,
            logs,
            ..Default::default()
        };
        if self.transition(&row.id, to, &reason, patch).await {
            if let Some(n) = self.node_of(row) {
                let _ = n.remove_session(&row.id).await;
            }
        }
    }

    /// Follows a node's container events for as long as the node is connected.
    pub async fn watch_node(self: Arc<Self>, node: Arc<dyn Node>) {
        let mut events = node.events();
        while let Some(ev) = events.next().await {
            if self.nodes.get(node.name()).is_none() {
                return; // removed
            }
            match ev {
                NodeEvent::Died {
                    session_id,
                    exit_code,
                    oom_killed,
                } => {
                    if let Ok(Some(row)) = store::get(&self.db, &session_id).await {
                        self.container_died(&row, exit_code, oom_killed).await;
                    }
                }
                NodeEvent::Resync => {
                    if let Err(e) = self.reconcile_node(&node, false).await {
                        tracing::debug!(node = %node.name(), error = %e, "reconcile after an event gap failed");
                    }
                }
            }
        }
    }

    /// A node's engine stopped answering: every session placed there ends in ERROR with the
    /// reason (their containers are out of reach), which frees their allocation.
    pub async fn node_down(&self, name: &str, why: &str) -> anyhow::Result<()> {
        let on: Vec<SessionRow> = store::with_status(&self.db, &HOLDING)
            .await?
            .into_iter()
            .filter(|s| s.node.as_deref() == Some(name))
            .collect();
        for s in on {
            let reason = format!("Node {name} went down: {why}");
            self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                .await;
        }
        self.wake();
        Ok(())
    }

    /// Brings the database and every connected node into agreement.
    pub async fn reconcile(self: &Arc<Self>, startup: bool) -> anyhow::Result<()> {
        for node in self.nodes.all() {
            if let Err(e) = self.reconcile_node(&node, startup).await {
                tracing::warn!(node = %node.name(), error = %e, "cannot reconcile with the node");
            }
        }
        if startup {
            // Sessions ending or waiting to start whose node is not connected.
            for s in store::live(&self.db).await? {
                if self.node_of(&s).is_some() {
                    continue;
                }
                match s.status() {
                    SessionStatus::Terminating => {
                        let me = self.clone();
                        let id = s.id.clone();
                        tokio::spawn(async move { me.finish_terminate(&id).await });
                    }
                    SessionStatus::Scheduled
                    | SessionStatus::Preparing
                    | SessionStatus::Running => {
                        let reason = format!(
                            "Node {} was not reachable when berth started.",
                            s.node.as_deref().unwrap_or("(none)")
                        );
                        self.transition(&s.id, SessionStatus::Error, &reason, Patch::default())
                            .await;
                    }
                    _ => {}
                }
            }
        }
        self.wake();
        Ok(())
    }

    /// Brings the database and one node into agreement. At start (`startup`), sessions caught
    /// mid-preparation are settled too; later passes leave in-flight work alone.
    pub async fn reconcile_node(
        self: &Arc<Self>,
        node: &Arc<dyn Node>,
        startup: bool,
    ) -> anyhow::Result<()> {
        let containers = node
            .list_containers()
            .await
            .map_err(|e| anyhow::anyhow!(e.0))?;
        let live: Vec<SessionRow> = store::live(&self.db)
            .await?
            .into_iter()
            .filter(|s| s.node.as_deref() == Some(node.name()))
            .collect();
        let live_ids: std::collections::HashSet<&str> =
            live.iter().map(|s| s.id.as_str()).collect();
        for c in &containers {
            if !live_ids.contains(c.session_id.as_str()) {
                tracing::info!(container = %c.id, session = %c.session_id, "removing a container without a live session");
                let _ = node.remove_session(&c.session_id).await;
            }
        }
        let by_session: HashMap<&str, &crate::node::ContainerState> = containers
            .iter()
            .map(|c| (c.session_id.as_str(), c))
            .collect();
        for s in &live {
            let c = by_session.get(s.id.as_str());
            match (s.status(), c) {
                (SessionStatus::Running, Some(c)) if !c.running => {
                    self.container_died(s, c.exit_code, false).await
                }
                (SessionStatus::Running, None) => {
                    self.transition(
                        &s.id,
                        SessionStatus::Error,
                        "The container disappeared while berth was not watching (removed outside berth?).",
                        Patch::default(),
                    )
                    .await;
                }
                (SessionStatus::Preparing, Some(c)) if startup && c.running => {
                    let patch = Patch {
                        ports: self.published(s, &c.id).await,
                        container_id: Some(c.id.clone()),
                        ..Default::default()
                    };
                    self.transition(
                        &s.id,
                        SessionStatus::Running,
                        "The container was found running after a gateway restart.",
                        patch,
                    )
                    .await;
                }
                (SessionStatus::Preparing, Some(c)) if startup => {
                    self.container_died(s, c.exit_code, false).await
                }
                (SessionStatus::Preparing, None) if startup => {
                    self.transition(
                        &s.id,
                        SessionStatus::Error,
                        "The gateway stopped while preparing this session; no container was started.",
                        Patch::default(),
                    )
                    .await;
                }
                (SessionStatus::Scheduled, _) if startup => {
                    let me = self.clone();
                    let row = s.clone();
                    tokio::spawn(async move { me.prepare(row).await });
                }
                (SessionStatus::Terminating, _) if startup => {
                    let me = self.clone();
                    let id = s.id.clone();
                    tokio::spawn(async move { me.finish_terminate(&id).await });
                }
                _ => {}
            }
        }
        self.wake();
        Ok(())
    }
}
