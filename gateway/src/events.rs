//! Live events for browsers (`GET /api/v1/events`, server-sent events). Every event has an
//! increasing id; the last [`RING`] are kept so a reconnecting browser that sends
//! `Last-Event-ID` gets what it missed. On SQLite the ids count in this process; with replicas
//! on PostgreSQL they come with the bus's notifications (`crate::bus`), the same on every
//! replica, so a browser may resume through another replica.

use crate::auth::CurrentUser;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

const RING: usize = 1024;

#[derive(Debug)]
pub struct Event {
    pub id: u64,
    pub kind: &'static str,
    /// Only this user (and admins) may see the event.
    pub owner_id: String,
    pub data: String,
}

pub struct EventHub {
    tx: broadcast::Sender<Arc<Event>>,
    /// Recent events, and the lock that orders publishing against subscribing.
    ring: Mutex<(u64, VecDeque<Arc<Event>>)>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(RING).0,
            ring: Mutex::new((0, VecDeque::new())),
        }
    }
}

impl EventHub {
    /// Publishes an event under the next id of this process.
    pub fn publish(&self, kind: &'static str, owner_id: &str, data: String) {
        self.publish_as(None, kind, owner_id, data)
    }

    /// Publishes an event under `id` (the bus's, on PostgreSQL), else the next id here.
    pub fn publish_as(&self, id: Option<u64>, kind: &'static str, owner_id: &str, data: String) {
        let mut ring = self.ring.lock().expect("event ring");
        let id = id.unwrap_or(ring.0 + 1);
        ring.0 = ring.0.max(id);
        let ev = Arc::new(Event {
            id,
            kind,
            owner_id: owner_id.to_string(),
            data,
        });
        if ring.1.len() == RING {
            ring.1.pop_front();
        }
        ring.1.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    /// Publishes a passing event (a stats sample): under the id of the newest numbered event,
    /// so a browser resuming after it misses no numbered one, and not kept for resuming.
    pub fn publish_unnumbered(&self, kind: &'static str, owner_id: &str, data: String) {
        let ring = self.ring.lock().expect("event ring");
        let ev = Arc::new(Event {
            id: ring.0,
            kind,
            owner_id: owner_id.to_string(),
            data,
        });
        let _ = self.tx.send(ev);
    }

    /// Events after `last_id` still in the ring, and a receiver for everything after them.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let ring = self.ring.lock().expect("event ring");
        let rx = self.tx.subscribe();
        let backlog = match last_id {
            Some(last) => ring.1.iter().filter(|e| e.id > last).cloned().collect(),
            None => Vec::new(),
        };
        (backlog, rx)
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

#[utoipa::path(
    get,
    path = "/events",
    operation_id = "events",
    tag = "events",
    summary = "Server-sent events: `session` on every status change, `stats` (a StatsSample) every 2 s per running session; Last-Event-ID resumes",
    params(("Last-Event-ID" = Option<String>, Header, description = "the last event seen, to resume after it")),
    responses((status = 200, description = "An event stream; the schema is that of one event", content_type = "text/event-stream", body = api::events::SseEvent))
)]
async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (backlog, mut rx) = state.events.subscribe(last);
    // The stream ends when the user's access is revoked (disabled, role changed).
    let access = user.access(&state);
    let visible = move |e: &Event| user.is_admin() || e.owner_id == user.id;
    let stream = async_stream::stream! {
        if access.is_revoked() {
            return;
        }
        for e in backlog {
            if visible(&e) {
                yield Ok(SseEvent::default().id(e.id.to_string()).event(e.kind).data(e.data.clone()));
            }
        }
        loop {
            let next = tokio::select! {
                r = rx.recv() => r,
                _ = access.revoked() => break,
            };
            match next {
                Ok(e) => {
                    if visible(&e) {
                        yield Ok(SseEvent::default().id(e.id.to_string()).event(e.kind).data(e.data.clone()));
                    }
                }
                // Too far behind (a stalled client among many stats events): end the stream, so
                // the browser reconnects with Last-Event-ID and gets the numbered events it
                // missed from the ring instead of losing them silently.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
