//! Scheduling: the loop that runs `scheduler::pass` over the PENDING sessions (on every
//! wake and every 5 s) and turns its placements into SCHEDULED sessions, each then prepared;
//! a session goes only to a node that has its image. Also the cancelling of a disabled
//! owner's PENDING sessions ([`Lifecycle::cancel_pending_of`]).

use super::{Lifecycle, Work, HOLDING};
use crate::sessions::store::{self, Patch, SessionRow};
use api::session::SessionStatus;
use api::Resources;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

impl Lifecycle {
    /// The scheduler: a `scheduler::pass` over the PENDING sessions on every wake and every
    /// 5 s (in the configured queue order and node choice), until shutdown; only while this
    /// process leads (a follower's wake reaches the leader through the bus).
    pub async fn run_scheduler(self: Arc<Self>) {
        loop {
            if self.leads() {
                // A pass is cut short when the term ends: a placement it committed before then
                // is taken up by the next leader, which looks only after its grace.
                let term = self.term.lock().expect("term").clone();
                tokio::select! {
                    _ = term.cancelled() => {}
                    r = self.schedule_once() => {
                        if let Err(e) = r {
                            tracing::error!(error = %e, "scheduler pass failed");
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }

    pub(super) async fn schedule_once(self: &Arc<Self>) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let pending = store::with_status(&self.db, &[SessionStatus::Pending]).await?;
        if pending.is_empty() {
            self.metrics.scheduler_idle();
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
                needs_local_storage: !s.mounts().is_empty() || s.home_vfolder.is_some(),
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
            let patch_gpu = (!hold.is_empty()).then_some(crate::db::Json(hold));
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
                self.work(Work::Start, &s.id, async move { me.prepare(row).await });
            }
        }
        self.metrics
            .scheduler_pass(started.elapsed(), out.waiting.len());
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
    pub(super) async fn images_on(&self, node: &str) -> Option<std::collections::HashSet<String>> {
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
    pub(super) async fn only_where_images_are(
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
}
