//! Live stats of running sessions. The leader keeps one streaming stats subscription per
//! running container ([`crate::nodes::Node::stats`]; a one-off read takes about a second on
//! Docker 20.10) and turns every [`SAMPLE_INTERVAL_MS`] of readings into a [`StatsSample`]
//! ([`derive`]). A sample goes to the owner's and admins' event streams (SSE event `stats`)
//! and into a bounded ring per session ([`StatsHub`], `GET /api/v1/sessions/{id}/stats`);
//! with replicas on PostgreSQL it goes through the bus, so every replica has it.
//!
//! Invariant: memory stays bounded — a ring holds at most [`HISTORY_MS`] of samples, is
//! dropped when its session ends ([`crate::sessions::lifecycle::Lifecycle::transition`]),
//! and a ring nobody fed for a minute (its session ended on another replica) is dropped
//! when the next sample of any session arrives.

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::events::EventHub;
use crate::nodes::RawStats;
use crate::sessions::lifecycle::Lifecycle;
use crate::sessions::store::{self, SessionRow};
use crate::AppState;
use api::session::SessionStatus;
use api::stats::{SessionStats, StatsSample, HISTORY_MS, SAMPLE_INTERVAL_MS};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Samples kept per session.
const RING: usize = (HISTORY_MS / SAMPLE_INTERVAL_MS) as usize;
/// A ring whose newest sample is older than this is stale (its session ended elsewhere).
const STALE_MS: i64 = 60_000;

/// One session's recent samples.
struct Ring {
    samples: VecDeque<StatsSample>,
}

/// The recent samples of every running session this process knows of.
pub struct StatsHub {
    rings: Mutex<HashMap<String, Ring>>,
    events: Arc<EventHub>,
}

impl StatsHub {
    pub fn new(events: Arc<EventHub>) -> Self {
        Self {
            rings: Mutex::default(),
            events,
        }
    }

    /// Keeps a sample of `owner_id`'s session and sends it to their (and admins') streams.
    pub fn record(&self, owner_id: &str, sample: StatsSample) {
        let json = serde_json::to_string(&sample).unwrap_or_default();
        self.record_json(owner_id, sample, json);
    }

    /// [`StatsHub::record`] with the sample's JSON already at hand (it came through the bus).
    pub fn record_json(&self, owner_id: &str, sample: StatsSample, json: String) {
        {
            let mut rings = self.rings.lock().expect("stats rings");
            let now = sample.at_ms;
            rings.retain(|id, r| {
                *id == sample.session || r.samples.back().is_some_and(|s| now - s.at_ms < STALE_MS)
            });
            let ring = rings.entry(sample.session.clone()).or_insert_with(|| Ring {
                samples: VecDeque::with_capacity(RING),
            });
            if ring.samples.len() == RING {
                ring.samples.pop_front();
            }
            ring.samples.push_back(sample);
        }
        self.events.publish_unnumbered("stats", owner_id, json);
    }

    /// Drops a session's samples (it ended).
    pub fn forget(&self, session_id: &str) {
        self.rings.lock().expect("stats rings").remove(session_id);
    }

    /// A session's newest sample and its history, oldest first.
    pub fn get(&self, session_id: &str) -> SessionStats {
        let rings = self.rings.lock().expect("stats rings");
        let history: Vec<StatsSample> = rings
            .get(session_id)
            .map(|r| r.samples.iter().cloned().collect())
            .unwrap_or_default();
        SessionStats {
            latest: history.last().cloned(),
            history,
            interval_ms: SAMPLE_INTERVAL_MS,
        }
    }

    /// A session's newest sample.
    pub fn latest(&self, session_id: &str) -> Option<StatsSample> {
        let rings = self.rings.lock().expect("stats rings");
        rings
            .get(session_id)
            .and_then(|r| r.samples.back().cloned())
    }

    /// How many sessions have samples here (for tests and metrics).
    pub fn sessions(&self) -> usize {
        self.rings.lock().expect("stats rings").len()
    }
}

/// The sample for the interval between two readings of one container, for a session given
/// `cpu_millicores` of CPU.
pub fn derive(session: &str, prev: &RawStats, now: &RawStats, cpu_millicores: u64) -> StatsSample {
    let ms = (now.at_ms - prev.at_ms).max(1) as f64;
    let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 * 1000.0 / ms;
    // CPU nanoseconds per wall nanosecond is "CPUs used"; against the allocation, in percent.
    let cpus_used = now.cpu_ns.saturating_sub(prev.cpu_ns) as f64 / (ms * 1e6);
    let allocated = cpu_millicores.max(1) as f64 / 1000.0;
    StatsSample {
        session: session.to_string(),
        at_ms: now.at_ms,
        cpu_pct: (cpus_used / allocated * 1000.0).round() / 10.0,
        mem_bytes: now.mem_bytes,
        mem_limit_bytes: now.mem_limit_bytes,
        net_rx: now.net_rx,
        net_tx: now.net_tx,
        blk_read: now.blk_read,
        blk_write: now.blk_write,
        net_rx_rate: per_s(prev.net_rx, now.net_rx),
        net_tx_rate: per_s(prev.net_tx, now.net_tx),
        blk_read_rate: per_s(prev.blk_read, now.blk_read),
        blk_write_rate: per_s(prev.blk_write, now.blk_write),
        pids: now.pids,
        gpu: None,
    }
}

/// The leader's loop: every interval, one collector per RUNNING session's container is made
/// sure of; collectors of sessions that stopped running end (and their rings go).
pub async fn sample_running(lifecycle: Arc<Lifecycle>) {
    // Dropping the set (the leader's term ended) aborts every collector.
    let mut collectors = tokio::task::JoinSet::new();
    let mut by_session: HashMap<String, (String, tokio::task::AbortHandle)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        while collectors.try_join_next().is_some() {}
        let Ok(rows) = store::with_status(lifecycle.db(), &[SessionStatus::Running]).await else {
            continue;
        };
        let running: HashMap<&str, &SessionRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
        by_session.retain(|id, (container, handle)| {
            let same = running
                .get(id.as_str())
                .is_some_and(|r| r.container_id.as_deref() == Some(container.as_str()));
            if !same {
                handle.abort();
                lifecycle.stats().forget(id);
            }
            // A collector whose stream ended while the session runs is started again below.
            same && !handle.is_finished()
        });
        for row in rows.iter() {
            if by_session.contains_key(&row.id) {
                continue;
            }
            let (Some(container), Some(node)) = (row.container_id.clone(), lifecycle.node_of(row))
            else {
                continue;
            };
            let handle = collectors.spawn(collect(
                lifecycle.clone(),
                node,
                row.clone(),
                container.clone(),
            ));
            by_session.insert(row.id.clone(), (container, handle));
        }
    }
}

/// Follows one container's readings and publishes a sample every interval.
async fn collect(
    lifecycle: Arc<Lifecycle>,
    node: Arc<dyn crate::nodes::Node>,
    row: SessionRow,
    container: String,
) {
    let cpu = row.resources().cpu.0;
    // Real NVIDIA devices the session holds (on the gateway's host): their use, from NVML.
    let gpus = if node.real_gpus() {
        row.gpu_hold().devices()
    } else {
        Vec::new()
    };
    let mut readings = node.stats(&container);
    let mut prev: Option<RawStats> = None;
    while let Some(now) = readings.next().await {
        match &prev {
            // Docker reads about once a second: every other reading makes a sample.
            Some(p) if now.at_ms - p.at_ms >= SAMPLE_INTERVAL_MS as i64 - 300 => {
                let mut sample = derive(&row.id, p, &now, cpu);
                // Stamped with this process's clock: a node's clock may be off, and freshness
                // and ring expiry are judged here.
                sample.at_ms =
                    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
                if !gpus.is_empty() {
                    let devices = gpus.clone();
                    sample.gpu = tokio::task::spawn_blocking(move || {
                        crate::nodes::gpu::sample(&crate::nodes::gpu::Nvml, &devices)
                    })
                    .await
                    .ok();
                }
                if let Ok(json) = serde_json::to_string(&sample) {
                    lifecycle.publish_passing("stats", &row.owner_id, json);
                }
                prev = Some(now);
            }
            Some(_) => {}
            None => prev = Some(now),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/sessions/{id}/stats", get(session_stats))
}

#[utoipa::path(
    get,
    path = "/sessions/{id}/stats",
    operation_id = "session_stats",
    tag = "sessions",
    summary = "Live resource use: the newest sample and the last 15 minutes (empty unless the session runs)",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "OK", body = api::stats::SessionStats), (status = 404, response = crate::openapi::NotFound))
)]
async fn session_stats(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<SessionStats>> {
    let row = crate::sessions::visible(&state, &user, &id).await?;
    let hub = state.lifecycle.stats();
    if row.status() != SessionStatus::Running {
        hub.forget(&row.id);
    }
    Ok(Json(hub.get(&row.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_ms: i64, cpu_ns: u64, net_rx: u64) -> RawStats {
        RawStats {
            at_ms,
            cpu_ns,
            net_rx,
            mem_bytes: 10,
            mem_limit_bytes: 100,
            ..Default::default()
        }
    }

    #[test]
    fn cpu_is_a_share_of_the_allocation_and_rates_are_per_second() {
        // Half a CPU's worth of time over 2 s, for a session given 0.5 CPU: all of it.
        let s = derive(
            "s",
            &reading(0, 0, 0),
            &reading(2000, 1_000_000_000, 4096),
            500,
        );
        assert_eq!(s.cpu_pct, 100.0);
        assert_eq!(s.net_rx_rate, 2048.0);
        assert_eq!(s.net_rx, 4096);
        assert_eq!((s.mem_bytes, s.mem_limit_bytes), (10, 100));
        // A counter that went backwards (a restarted container) is no negative rate.
        let s = derive("s", &reading(0, 5, 100), &reading(1000, 0, 0), 1000);
        assert_eq!((s.cpu_pct, s.net_rx_rate), (0.0, 0.0));
    }

    #[test]
    fn a_ring_keeps_fifteen_minutes_and_stale_rings_go() {
        let hub = StatsHub::new(Arc::new(EventHub::default()));
        let sample = |session: &str, at_ms: i64| {
            derive(
                session,
                &reading(at_ms - 2000, 0, 0),
                &reading(at_ms, 0, 0),
                1000,
            )
        };
        for i in 0..(RING as i64 + 10) {
            hub.record("u", sample("a", 1_000_000 + i * 2000));
        }
        let got = hub.get("a");
        assert_eq!(got.history.len(), RING);
        assert_eq!(
            got.latest.unwrap().at_ms,
            1_000_000 + (RING as i64 + 9) * 2000
        );
        // "a" stops being fed; a minute later a sample of "b" drops it.
        hub.record(
            "u",
            sample("b", 1_000_000 + (RING as i64 + 9) * 2000 + STALE_MS),
        );
        assert_eq!(hub.sessions(), 1);
        assert!(hub.get("a").latest.is_none());
        hub.forget("b");
        assert_eq!(hub.sessions(), 0);
    }
}
