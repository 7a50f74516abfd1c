//! Reaping: RUNNING sessions past their owner's policy lifetime or idle timeout are ended —
//! idle meaning no terminal, app or tunnel traffic, or (with `idle_cpu_percent`) CPU and GPUs
//! below the policy's threshold, as the live stats (`crate::stats`) measured it — and their
//! owners are warned (the `ending` event) shortly before.

use super::{EndCause, Lifecycle};
use crate::sessions::store;
use api::events::{EndingCause, SessionEnding};
use api::session::SessionStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often lifetime and idle limits are checked.
const REAP_EVERY: Duration = Duration::from_secs(2);
/// How long before a policy's end its owner is warned (at most half the limit).
const WARN_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How often a warning is repeated (a browser that opens later gets it too).
const WARN_AGAIN: Duration = Duration::from_secs(30);
/// A stats sample older than this says nothing about whether a session is busy now.
const FRESH_MS: i64 = 10_000;

impl Lifecycle {
    /// Ends RUNNING sessions past their policy's lifetime or idle timeout, after recording
    /// the activity the proxy saw (terminal, app and tunnel traffic). Runs until shutdown
    /// (under [`Lifecycle::background`]). Every replica records the activity its proxy saw;
    /// only the leader ends sessions.
    pub async fn run_reaper(self: Arc<Self>) {
        loop {
            tokio::time::sleep(REAP_EVERY).await;
            if let Err(e) = self.record_activity().await {
                tracing::warn!(error = %e, "cannot record session activity");
            }
            if !self.leads() {
                continue;
            }
            if let Err(e) = self.reap_once().await {
                tracing::warn!(error = %e, "policy check failed");
            }
        }
    }

    /// Writes what the proxy noted in memory since the last pass: one write per active session.
    async fn record_activity(&self) -> anyhow::Result<()> {
        for (id, at) in latest(
            self.terminals
                .take_activity()
                .into_iter()
                .chain(self.apps.take_activity()),
        ) {
            store::touch(&self.db, &id, &crate::db::format_time(at.into())).await?;
        }
        Ok(())
    }

    pub(super) async fn reap_once(self: &Arc<Self>) -> anyhow::Result<()> {
        let now = time::OffsetDateTime::now_utc();
        let mut policies: HashMap<String, api::policy::Policy> = HashMap::new();
        let running = store::with_status(&self.db, &[SessionStatus::Running]).await?;
        self.watch
            .lock()
            .expect("reaper watch")
            .retain(|id| running.iter().any(|s| s.id == id));
        for s in running {
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
            let mut ends: Vec<Ending> = Vec::new();
            if let Some(max) = policy.max_session_lifetime_s {
                ends.push(Ending {
                    at: started + Duration::from_secs(max),
                    limit: max,
                    cause: EndingCause::Lifetime,
                    why: format!(
                        "The session reached the maximum lifetime of {max} s set by its policy."
                    ),
                });
            }
            if let Some(idle) = policy.idle_timeout_s {
                ends.push(Ending {
                    at: active + Duration::from_secs(idle),
                    limit: idle,
                    cause: EndingCause::Idle,
                    why: format!("The session was idle (no terminal, app or tunnel traffic) for {idle} s, the idle timeout of its policy."),
                });
                if let Some(threshold) = policy.idle_cpu_percent {
                    let held = s.gpu_hold().devices().len();
                    let (busy, last) = self.last_busy(&s.id, threshold, held, now);
                    ends.push(Ending {
                        at: busy.max(started) + Duration::from_secs(idle),
                        limit: idle,
                        cause: EndingCause::Cpu,
                        why: format!(
                            "The session was idle (CPU below {threshold} % of its allocation{}) for {idle} s, the idle timeout of its policy{}.",
                            if s.gpu_hold().devices().is_empty() { "" } else { ", and its GPUs too" },
                            last.map(|c| format!("; its last sample was {c:.1} %")).unwrap_or_default()
                        ),
                    });
                }
            }
            let Some(first) = ends.into_iter().min_by_key(|e| e.at) else {
                self.warn_of(&s, None, now);
                continue;
            };
            if first.at <= now {
                self.watch.lock().expect("reaper watch").forget(&s.id);
                self.terminate(&s.id, &EndCause::Policy(first.why)).await?;
            } else {
                self.warn_of(&s, Some(&first), now);
            }
        }
        Ok(())
    }

    /// The last time session `id` was seen busy — its CPU, or a GPU it holds, at or above
    /// `threshold` percent in a fresh sample — and that sample's CPU. A session without a fresh
    /// sample counts as busy (nothing is ended on what nobody measured), and so does one this
    /// process only began to watch, and one holding `gpus` devices the sample does not cover
    /// (a node whose GPUs NVML cannot read here).
    fn last_busy(
        &self,
        id: &str,
        threshold: u64,
        gpus: usize,
        now: time::OffsetDateTime,
    ) -> (time::OffsetDateTime, Option<f64>) {
        let sample = self.stats.latest(id);
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let t = threshold as f64;
        let busy = match &sample {
            Some(x) if now_ms - x.at_ms <= FRESH_MS => {
                let measured = x.gpu.as_ref().map_or(0, Vec::len);
                x.cpu_pct >= t || x.gpu.iter().flatten().any(|g| g.util_pct >= t) || measured < gpus
            }
            _ => true,
        };
        let mut watch = self.watch.lock().expect("reaper watch");
        let at = watch.busy.entry(id.to_string()).or_insert(now);
        if busy {
            *at = now;
        }
        (*at, sample.map(|x| x.cpu_pct))
    }

    /// Tells the owner of `s` that a policy will end it at `ending` (or no longer will): from
    /// [`WARN_BEFORE`] before (half the limit when that is shorter), again every
    /// [`WARN_AGAIN`], and once when the end moves away.
    fn warn_of(&self, s: &store::SessionRow, ending: Option<&Ending>, now: time::OffsetDateTime) {
        let due = ending.filter(|e| {
            let window = WARN_BEFORE.min(Duration::from_secs(e.limit / 2));
            e.at - now <= window
        });
        let event = {
            let mut watch = self.watch.lock().expect("reaper watch");
            let last = watch.warned.get(&s.id).cloned();
            match (due, last) {
                (Some(e), last) => {
                    let again = last.is_none_or(|(at, sent)| {
                        (at - e.at).abs() > time::Duration::seconds(5)
                            || sent.elapsed() >= WARN_AGAIN
                    });
                    if !again {
                        return;
                    }
                    watch
                        .warned
                        .insert(s.id.clone(), (e.at, std::time::Instant::now()));
                    let at = e.at.replace_nanosecond(0).unwrap_or(e.at);
                    let shown = at
                        .format(time::macros::format_description!(
                            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
                        ))
                        .unwrap_or_default();
                    SessionEnding {
                        session: s.id.clone(),
                        cause: Some(e.cause),
                        detail: format!(
                            "{} It will be ended at {shown}{}",
                            match e.cause {
                                EndingCause::Lifetime => "The session is near the maximum lifetime its policy allows.",
                                EndingCause::Idle => "The session is idle: no terminal, app or tunnel traffic.",
                                EndingCause::Cpu => "The session is idle: its CPU has stayed below its policy's threshold.",
                            },
                            match e.cause {
                                EndingCause::Lifetime => "; save your work.",
                                EndingCause::Idle => " unless it is used before then.",
                                EndingCause::Cpu => " unless it gets busy before then.",
                            }
                        ),
                        ends_at: Some(crate::db::format_time(at)),
                    }
                }
                (None, Some(_)) => {
                    watch.warned.remove(&s.id);
                    SessionEnding {
                        session: s.id.clone(),
                        ends_at: None,
                        cause: None,
                        detail: String::new(),
                    }
                }
                (None, None) => return,
            }
        };
        if let Ok(json) = serde_json::to_string(&event) {
            self.publish_passing("ending", &s.owner_id, json);
        }
    }
}

/// A policy's end of a session: when, the limit it comes from (seconds), and why.
struct Ending {
    at: time::OffsetDateTime,
    limit: u64,
    cause: EndingCause,
    why: String,
}

/// What the reaper remembers of running sessions between passes.
#[derive(Default)]
pub(crate) struct Watched {
    /// When each session was last seen busy (for `idle_cpu_percent`).
    busy: HashMap<String, time::OffsetDateTime>,
    /// The end each session was last warned of, and when.
    warned: HashMap<String, (time::OffsetDateTime, std::time::Instant)>,
}

impl Watched {
    fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.busy.retain(|id, _| keep(id));
        self.warned.retain(|id, _| keep(id));
    }

    fn forget(&mut self, id: &str) {
        self.busy.remove(id);
        self.warned.remove(id);
    }
}

/// The latest time of each session among `noted` (the terminals' and the apps' notes).
fn latest(noted: impl Iterator<Item = (String, SystemTime)>) -> HashMap<String, SystemTime> {
    let mut out: HashMap<String, SystemTime> = HashMap::new();
    for (id, at) in noted {
        let e = out.entry(id).or_insert(at);
        *e = (*e).max(at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_app_notes_of_a_session_become_one_write_at_the_latest_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let terminal = vec![("a".to_string(), t), ("b".to_string(), t)];
        let apps = vec![
            ("a".to_string(), t + Duration::from_secs(3)),
            ("b".to_string(), t - Duration::from_secs(3)),
        ];
        let got = latest(terminal.into_iter().chain(apps));
        assert_eq!(got.len(), 2);
        assert_eq!(got["a"], t + Duration::from_secs(3));
        assert_eq!(got["b"], t);
    }
}
