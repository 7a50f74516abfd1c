//! Events: a node's container events (deaths become ERROR or, for batch sessions, TERMINATED)
//! and a node going down.

use super::{Lifecycle, HOLDING};
use crate::nodes::{Node, NodeEvent};
use crate::sessions::store::{self, Patch, SessionRow};
use api::session::{SessionStatus, SessionType};
use futures_util::StreamExt;
use std::sync::Arc;

impl Lifecycle {
    /// A session's container ended on its own.
    pub(super) async fn container_died(&self, row: &SessionRow, exit_code: Option<i64>, oom: bool) {
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
}
