//! Live stats against real containers: a busy session's CPU against its allocation and its
//! memory against its limit, in `stats` events and `GET /sessions/{id}/stats`; stats stop
//! and are dropped when the session ends; other users see neither.

use crate::common::{assert_problem, wait_status, TestApp};
use crate::events::SseStream;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The next `stats` event for session `id` that satisfies `ok`; panics after `within`.
async fn stats_event(
    events: &mut SseStream,
    id: &str,
    within: Duration,
    ok: impl Fn(&api::stats::StatsSample) -> bool,
) -> api::stats::StatsSample {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = None;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            panic!("no fitting stats event for {id} within {within:?}; the last: {last:?}");
        }
        let ev = tokio::time::timeout(left, events.next(left)).await;
        let Ok(ev) = ev else { continue };
        if ev.event != "stats" {
            continue;
        }
        assert!(ev.id.is_some(), "every event has an id: {ev:?}");
        let s = crate::common::decode_strict::<api::stats::StatsSample>(ev.data.as_bytes());
        if s.session == id {
            if ok(&s) {
                return s;
            }
            last = Some(s);
        }
    }
}

#[tokio::test]
async fn a_busy_session_shows_its_cpu_and_memory_live_and_its_stats_end_with_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let s = alice
        .create_session(json!({"name": "busy", "image": crate::common::IMAGE,
                               "resources": {"cpu": "0.25", "mem": "256m"}}))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    let running = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    let container = running["container_id"].as_str().unwrap().to_string();
    let mut events = SseStream::open(&alice).await;
    let mut bobs = SseStream::open(&bob).await;

    // One core's worth of spinning, held to the session's quarter of a CPU, and 96 MiB held.
    let burn = "while :; do :; done & exec python3 -c 'b = bytearray(96 << 20); import time; time.sleep(600)'";
    let (ok, _) = crate::common::docker(&["exec", "-d", &container, "sh", "-c", burn]);
    assert!(ok, "docker exec");
    let started = Instant::now();
    let busy = stats_event(&mut events, &id, Duration::from_secs(15), |s| {
        s.cpu_pct > 70.0 && s.mem_bytes > 90 << 20
    })
    .await;
    eprintln!("busy after {:?}: {busy:?}", started.elapsed());
    assert!(busy.cpu_pct < 130.0, "held to its allocation: {busy:?}");
    assert_eq!(busy.mem_limit_bytes, 256 << 20, "{busy:?}");
    assert!(busy.pids >= 2, "{busy:?}");

    // The history holds the samples in order, the newest last.
    let next = stats_event(&mut events, &id, Duration::from_secs(5), |_| true).await;
    assert!(next.at_ms > busy.at_ms, "newer: {busy:?} {next:?}");
    let stats = alice
        .get(&format!("/api/v1/sessions/{id}/stats"))
        .await
        .expect_json_as::<api::stats::SessionStats>(200);
    let history = stats["history"].as_array().unwrap();
    assert!(history.len() >= 2, "{stats}");
    let times: Vec<i64> = history
        .iter()
        .map(|s| s["at_ms"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert_eq!(stats["latest"], *history.last().unwrap());
    assert_eq!(stats["interval_ms"], 2000);

    // Another user's session answers like a missing one, and bob's stream carries none of it.
    let missing = format!("/api/v1/sessions/{}/stats", uuid::Uuid::new_v4());
    assert_problem(&bob.get(&missing).await, 404, "not-found");
    let r = bob.get(&format!("/api/v1/sessions/{id}/stats")).await;
    assert_problem(&r, 404, "not-found");
    assert_problem(
        &alice.get("/api/v1/sessions/not-an-id/stats").await,
        404,
        "not-found",
    );

    // Ended: no more samples, and none kept.
    crate::common::end_session(&alice, &id).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = alice
        .get(&format!("/api/v1/sessions/{id}/stats"))
        .await
        .expect_json(200);
    assert_eq!(after["latest"], Value::Null, "{after}");
    assert_eq!(after["history"], json!([]), "{after}");
    let quiet = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let ev = events.next(Duration::from_secs(10)).await;
            if ev.event == "stats" && ev.data.contains(&id) {
                return ev;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a stats event after the end: {quiet:?}");
    // Bob's stream (open all along) never carried alice's stats.
    let leaked = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let ev = bobs.next(Duration::from_secs(5)).await;
            if ev.data.contains(&id) {
                return ev;
            }
        }
    })
    .await;
    assert!(leaked.is_err(), "bob saw alice's session: {leaked:?}");
}

/// Serves 8 MiB of zeros on 0.0.0.0:8000 for every GET.
const BIG_FILE: &str = r#"
import http.server
BODY = bytes(8 << 20)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

/// Network counters move with real traffic: 24 MiB downloaded from a session's app through
/// the proxy show as its bytes sent, and as a send rate while it flows.
#[tokio::test]
async fn a_download_through_the_proxy_moves_the_sessions_network_counters() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut body = crate::common::small_session("serves");
    body["preopen_ports"] = json!([8000]);
    let s = alice.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let running = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    crate::common::run_python(running["container_id"].as_str().unwrap(), BIG_FILE);
    let (http, host, cookie) = crate::common::app_login(&app, &alice, &id, "port-8000").await;
    let mut events = SseStream::open(&alice).await;
    let before = stats_event(&mut events, &id, Duration::from_secs(15), |_| true).await;
    let mut got = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < 24 << 20 {
        assert!(Instant::now() < deadline, "the app never served 24 MiB");
        let r = http
            .get(format!("{}/", app.base))
            .header(reqwest::header::HOST, &host)
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await
            .expect("a request through the app proxy");
        if r.status() == 200 {
            got += r.bytes().await.unwrap().len();
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await; // not listening yet
        }
    }
    let after = stats_event(&mut events, &id, Duration::from_secs(15), |s| {
        s.net_tx >= before.net_tx + (24 << 20)
    })
    .await;
    let history = alice
        .get(&format!("/api/v1/sessions/{id}/stats"))
        .await
        .expect_json_as::<api::stats::SessionStats>(200);
    let peak = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["net_tx_rate"].as_f64())
        .fold(0.0, f64::max);
    assert!(
        peak > 1_000_000.0,
        "a send rate while it flowed: {peak} B/s, {after:?}"
    );
    crate::common::end_session(&alice, &id).await;
}
