//! Terminating: a session ended on request or by a policy goes TERMINATING, its containers
//! are removed (its logs kept), then TERMINATED.

use super::{EndCause, Lifecycle, Work, KEPT_LOG_BYTES};
use crate::sessions::store::{self, Patch, SessionRow};
use api::session::SessionStatus;
use std::sync::Arc;
use std::time::Duration;

impl Lifecycle {
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
                    self.work(Work::End, &id.clone(), async move {
                        me.finish_terminate(&id).await
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) async fn keep_logs(&self, row: &SessionRow) -> Option<String> {
        self.node_of(row)?.logs(&row.id, KEPT_LOG_BYTES).await.ok()
    }

    /// TERMINATING → TERMINATED once every container of the session is gone.
    pub(super) async fn finish_terminate(&self, id: &str) {
        let (logs, why, node, placed) = match store::get(&self.db, id).await {
            Ok(Some(row)) => (
                self.keep_logs(&row).await,
                row.status_reason.clone(),
                self.node_of(&row),
                row.node.clone(),
            ),
            _ => (None, String::new(), None, None),
        };
        // The final reason keeps the cause (who or which policy ended it) and says where the
        // container stands: removed, or left for its node's clean-up when that node is away.
        let container = match (&node, &placed) {
            (None, Some(name)) => format!(
                "Its node {name} is not connected; berth removes the container when the node answers again."
            ),
            _ => "The container was removed.".to_string(),
        };
        let done = format!("{why} {container}").trim().to_string();
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
}
