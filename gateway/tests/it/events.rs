//! `GET /api/v1/events`: server-sent session events, each user seeing only their own.

use crate::common::{end_session, small_session, Client, TestApp};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// One parsed server-sent event.
#[derive(Debug)]
pub(crate) struct Sse {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Reads an SSE response frame by frame.
pub(crate) struct SseStream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
}

impl SseStream {
    pub(crate) async fn open(c: &Client) -> SseStream {
        Self::open_after(c, None).await
    }

    /// Opens the stream resuming after event `last` (`Last-Event-ID`).
    pub(crate) async fn open_after(c: &Client, last: Option<&str>) -> SseStream {
        let mut req = c
            .http
            .get(c.url("/api/v1/events"))
            .header("accept", "text/event-stream");
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        let r = req.send().await.expect("events request");
        assert_eq!(r.status(), 200);
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        SseStream {
            body: r.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed(),
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped); panics after `timeout`.
    pub(crate) async fn next(&mut self, timeout: Duration) -> Sse {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let frame: String = self.buf.drain(..end + 2).collect();
                    let mut ev = Sse {
                        id: None,
                        event: "message".into(),
                        data: String::new(),
                    };
                    let mut any = false;
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            ev.event = v.trim().to_string();
                            any = true;
                        } else if let Some(v) = line.strip_prefix("data:") {
                            if !ev.data.is_empty() {
                                ev.data.push('\n');
                            }
                            ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                            any = true;
                        } else if let Some(v) = line.strip_prefix("id:") {
                            ev.id = Some(v.trim().to_string());
                        }
                    }
                    if any {
                        return ev;
                    }
                    continue;
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self
                        .buf
                        .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                    Some(Err(e)) => panic!("event stream broke: {e}"),
                    None => panic!("event stream ended"),
                }
            }
        })
        .await
        .expect("an event within the timeout")
    }

    /// Whether the stream ends (the server closes it) within `timeout`, events before the end
    /// skipped.
    pub(crate) async fn ends_within(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                match self.body.next().await {
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return,
                }
            }
        })
        .await
        .is_ok()
    }

    /// Reads session events until one for `id` has `status`; returns every session event read,
    /// each checked to be exactly an `api::session::Session`.
    pub(crate) async fn until(&mut self, id: &str, status: &str, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self.next(left).await;
            if ev.event != "session" {
                continue;
            }
            assert!(ev.id.is_some(), "every event has an id: {ev:?}");
            let v: Value = serde_json::from_str(&ev.data)
                .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", ev.data));
            // The data is exactly the session JSON of the contract.
            crate::common::decode_strict::<api::session::Session>(ev.data.as_bytes());
            let done = v["id"] == id && v["status"] == status;
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn events_stream_session_changes_to_owner_and_admins_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut admin_events = SseStream::open(&admin).await;
    let mut alice_events = SseStream::open(&alice).await;
    let mut bob_events = SseStream::open(&bob).await;

    let s = alice.create_session(small_session("watched")).await;
    let id = s["id"].as_str().unwrap().to_string();

    let seen = alice_events
        .until(&id, "RUNNING", Duration::from_secs(60))
        .await;
    let order: Vec<&str> = seen
        .iter()
        .filter(|v| v["id"] == id.as_str())
        .filter_map(|v| v["status"].as_str())
        .collect();
    assert_eq!(order.first(), Some(&"PENDING"), "{order:?}");
    for want in ["SCHEDULED", "PREPARING", "RUNNING"] {
        assert!(order.contains(&want), "alice saw {order:?}");
    }
    admin_events
        .until(&id, "RUNNING", Duration::from_secs(30))
        .await;

    // Events go out in one order to everyone: once Bob sees an event of his own session,
    // made after Alice's reached RUNNING, everything of Alice's was already sent or never
    // will be. He must have seen none of it.
    let b = bob.create_session(small_session("bobs")).await;
    let bid = b["id"].as_str().unwrap().to_string();
    let seen = bob_events
        .until(&bid, "PENDING", Duration::from_secs(30))
        .await;
    for v in &seen {
        assert_eq!(
            v["id"],
            bid.as_str(),
            "bob received someone else's event: {v}"
        );
        assert_eq!(v["owner_name"], "bob", "{v}");
    }
    end_session(&bob, &bid).await;
}
