//! Reaping: RUNNING sessions past their owner's policy lifetime or idle timeout are ended.

use super::{EndCause, Lifecycle};
use crate::sessions::store;
use api::session::SessionStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often lifetime and idle limits are checked.
const REAP_EVERY: Duration = Duration::from_secs(2);

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
                    .map(|m| format!("The session was idle (no terminal, app or tunnel traffic) for {m} s, the idle timeout of its policy."))
            };
            if let Some(why) = cause {
                self.terminate(&s.id, &EndCause::Policy(why)).await?;
            }
        }
        Ok(())
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
