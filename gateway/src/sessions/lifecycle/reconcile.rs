//! Reconciling: the database and the nodes' containers brought into agreement — at start,
//! before any request, where sessions caught mid-way by a stop or a crash are settled
//! (adopted, prepared again, finished); when a node comes back; and every 30 s
//! ([`Lifecycle::run_sweeper`]) for late-landing containers and missed deaths.

use super::{Lifecycle, Work};
use crate::nodes::Node;
use crate::sessions::store::{self, Patch, SessionRow};
use api::session::SessionStatus;
use std::collections::HashMap;
use std::sync::Arc;

/// How often every node is reconciled while berth runs.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Lifecycle {
    /// Reconciles every node every [`SWEEP_EVERY`]: a container whose create was still landing
    /// in the engine when a killed gateway's session ended (so nothing was there to remove)
    /// is removed, and a death the event stream missed is recorded.
    /// Only the leader sweeps. It also takes up a session left between two steps: one seen
    /// TERMINATING at two sweeps in a row is ended again, one seen SCHEDULED at two sweeps in
    /// a row is prepared (the replica that was at it died or stopped leading); work of that
    /// kind already in flight here is left be.
    pub async fn run_sweeper(self: Arc<Self>) {
        let mut before: HashMap<String, SessionStatus> = HashMap::new();
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            if !self.leads() {
                before.clear();
                continue;
            }
            let stuck = [SessionStatus::Terminating, SessionStatus::Scheduled];
            match store::with_status(&self.db, &stuck).await {
                Ok(rows) => {
                    let mut now = HashMap::new();
                    for s in rows {
                        now.insert(s.id.clone(), s.status());
                        if before.get(&s.id) != Some(&s.status()) {
                            continue;
                        }
                        let me = self.clone();
                        if s.status() == SessionStatus::Terminating {
                            let id = s.id.clone();
                            self.work(
                                Work::End,
                                &s.id,
                                async move { me.finish_terminate(&id).await },
                            );
                        } else {
                            let id = s.id.clone();
                            self.work(Work::Start, &id, async move { me.prepare(s).await });
                        }
                    }
                    before = now;
                }
                Err(e) => tracing::warn!(error = %e, "cannot list sessions between two steps"),
            }
            if let Err(e) = self.reconcile(false).await {
                tracing::warn!(error = %e, "periodic reconcile failed");
            }
        }
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
                        self.work(
                            Work::End,
                            &s.id,
                            async move { me.finish_terminate(&id).await },
                        );
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
        // Sessions already RUNNING before the containers are listed: only for them does a
        // missing or stopped container mean something (one prepared meanwhile may be listed
        // half-made, or not yet).
        let running_before: std::collections::HashSet<String> =
            store::with_status(&self.db, &[SessionStatus::Running])
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect();
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
        let by_session: HashMap<&str, &crate::nodes::ContainerState> = containers
            .iter()
            .map(|c| (c.session_id.as_str(), c))
            .collect();
        for s in &live {
            let c = by_session.get(s.id.as_str());
            match (s.status(), c) {
                (SessionStatus::Running, Some(c))
                    if !c.running && running_before.contains(&s.id) =>
                {
                    self.container_died(s, c.exit_code, false).await
                }
                (SessionStatus::Running, None) if running_before.contains(&s.id) => {
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
                    // It started, so its home (if new) was filled before.
                    if let Some(h) = &s.home_vfolder {
                        crate::vfolders::home::mark_seeded_logged(&self.db, h).await;
                    }
                }
                // It ran and ended while nobody watched: a real exit, said with its code.
                (SessionStatus::Preparing, Some(c)) if startup && c.started => {
                    self.container_died(s, c.exit_code, false).await
                }
                // Caught half-made (no container yet, or one created but never started):
                // prepared again, which starts or makes the container.
                (SessionStatus::Preparing, _) if startup => {
                    tracing::info!(session = %s.id, "preparing again a session caught by a restart");
                    let me = self.clone();
                    let row = s.clone();
                    self.work(
                        Work::Start,
                        &s.id,
                        async move { me.make_container(row).await },
                    );
                }
                (SessionStatus::Scheduled, _) if startup => {
                    let me = self.clone();
                    let row = s.clone();
                    self.work(Work::Start, &s.id, async move { me.prepare(row).await });
                }
                (SessionStatus::Terminating, _) if startup => {
                    let me = self.clone();
                    let id = s.id.clone();
                    self.work(
                        Work::End,
                        &s.id,
                        async move { me.finish_terminate(&id).await },
                    );
                }
                _ => {}
            }
        }
        self.wake();
        Ok(())
    }
}
