//! Nothing a client sends exhausts the gateway: password hashing runs a few at a time, login
//! throttling counts attempts as they start and cannot lock the admin out from elsewhere,
//! request headers must arrive in time, connections are capped, and terminal handles nobody
//! dials are forgotten.

use crate::common::{small_session, wait_status, wait_until, TestApp, USER_PASSWORD};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// argon2id's memory per hash with the default parameters (m = 19456 KiB).
const HASH_BYTES: u64 = 19456 * 1024;

/// `VmHWM` (peak resident memory) or another `kB` line of `/proc/PID/status`, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kb * 1024
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches loopback).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn login_from(app: &TestApp, http: &reqwest::Client, user: &str, pw: &str) -> u16 {
    http.post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .expect("login request")
        .status()
        .as_u16()
}

/// Asks `/healthz` every 100 ms until `done`; each answer must come within a second.
async fn healthz_keeps_answering(base: String, done: tokio::sync::watch::Receiver<bool>) -> usize {
    let http = reqwest::Client::new();
    let mut answered = 0;
    while !*done.borrow() {
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            http.get(format!("{base}/healthz")).send(),
        )
        .await;
        assert!(
            matches!(&r, Ok(Ok(resp)) if resp.status() == 200),
            "/healthz did not answer within a second ({:?})",
            t.elapsed()
        );
        answered += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answered
}

#[tokio::test]
async fn a_burst_of_logins_is_hashed_a_few_at_a_time() {
    let app = TestApp::spawn().await;
    // Warm up (one real login), then measure from here.
    app.admin().await;
    let before = proc_status_bytes(app.pid(), "VmHWM:");
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let health = tokio::spawn(healthz_keeps_answering(app.base.clone(), done_rx));
    // 40 logins at once, each from its own address and for its own (unknown) username, so
    // throttling lets every one of them reach the password check.
    let mut logins = Vec::new();
    for i in 0..40u8 {
        let http = client_from(Ipv4Addr::new(127, 0, 1, 10 + i));
        let base = app.base.clone();
        logins.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": format!("ghost{i}"), "password": "not-the-password"}))
                .send()
                .await
                .expect("login request")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for l in logins {
        statuses.push(l.await.unwrap());
    }
    done_tx.send(true).unwrap();
    assert!(health.await.unwrap() > 0, "/healthz was asked meanwhile");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "bad logins answer 401 (or 503 when the server is busy): {statuses:?}"
    );
    assert!(statuses.contains(&401), "some were checked: {statuses:?}");
    // At most `permits` hashes held their memory at once (plus slack for threads and
    // buffers), not one per request.
    let permits = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8) as u64;
    let bound = permits * HASH_BYTES + 64 * 1024 * 1024;
    let grew = proc_status_bytes(app.pid(), "VmHWM:").saturating_sub(before);
    println!("peak memory grew by {} MiB during the burst", grew >> 20);
    assert!(
        grew < bound,
        "peak memory grew by {} MiB during the burst; the bound is {} MiB",
        grew >> 20,
        bound >> 20
    );
}

#[tokio::test]
async fn a_parallel_burst_of_bad_logins_is_counted_as_it_starts() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let http = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let mut tries = Vec::new();
    for _ in 0..20 {
        let (http, base) = (http.clone(), app.base.clone());
        tries.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": "alice", "password": "wrong-password!"}))
                .send()
                .await
                .expect("login request")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    // 503: the server was too busy to check the password in time (a loaded machine).
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        checked <= 8 && refused >= 12 && statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "at most 8 attempts may reach the password check, the rest 429: {statuses:?}"
    );
    // Locked at that address, even with the right password.
    assert_eq!(login_from(&app, &http, "alice", USER_PASSWORD).await, 429);
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_admin_out_from_another_address() {
    let app = TestApp::spawn().await;
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let mut locked = false;
    for _ in 0..12 {
        match login_from(&app, &attacker, "admin", "guessing-the-password").await {
            429 => {
                locked = true;
                break;
            }
            401 => {}
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(locked, "the attacker's address is locked out");
    // The admin, from their own address, logs in at once.
    let t = Instant::now();
    let admin = app.anon();
    let r = app
        .try_login(&admin, "admin", crate::common::ADMIN_PASSWORD)
        .await;
    r.expect_json(200);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the admin's login was held up: {:?}",
        t.elapsed()
    );
    // The attacker stays locked, for admin and for its other guesses alike.
    assert_eq!(
        login_from(&app, &attacker, "admin", crate::common::ADMIN_PASSWORD).await,
        429
    );
}

/// Reads from `s` until the server closes it; how long that took. Panics after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept a stalled connection open for {limit:?}"),
        }
    }
}

async fn healthz_raw(s: &mut TcpStream) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn request_headers_must_arrive_in_time() {
    let app = TestApp::spawn_with_config("header_timeout_s = 1\n").await;
    // Half a request line, then nothing.
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /heal").await.unwrap();
    // Headers trickled one byte at a time, slower than the timeout allows in all.
    let mut trickle = TcpStream::connect(app.addr).await.unwrap();
    // A connection that says nothing at all.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let trickling = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if trickle.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        trickle
    });
    // Meanwhile the server answers others at once.
    let mut ok = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz_raw(&mut ok).await.starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut half, Duration::from_secs(8)).await;
    assert!(
        took >= Duration::from_millis(500),
        "closed too early: {took:?}"
    );
    closed_within(&mut silent, Duration::from_secs(8)).await;
    let mut trickle = tokio::time::timeout(Duration::from_secs(10), trickling)
        .await
        .expect("the trickling connection is cut")
        .unwrap();
    closed_within(&mut trickle, Duration::from_secs(8)).await;
    let mut ok = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz_raw(&mut ok).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with_config("max_connections = 3\nheader_timeout_s = 60\n").await;
    // Three idle connections take every slot.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // Give the server the chance to accept them (it takes a slot before each accept).
    let mut probe = TcpStream::connect(app.addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(2), probe.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a fourth connection was served while three held every slot: {early:?}"
    );
    // One idle connection goes: the waiting one is served.
    drop(idle.pop());
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), probe.read_to_end(&mut out))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn terminal_handles_nobody_dials_are_forgotten() {
    let app = TestApp::spawn_with_config("terminal_connect_s = 1\n").await;
    let alice = app.user("alice").await;
    let s = alice.create_session(small_session("t")).await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    let used = alice.terminal_url(&id).await;
    let unused = alice.terminal_url(&id).await;
    // Dialled in time: it stays.
    let (mut ws, _) = tokio_tungstenite::connect_async(used.as_str())
        .await
        .expect("dialled in time");
    wait_until(
        "the undialled handle is forgotten",
        Duration::from_secs(20),
        || async { app.log().contains("never connected") },
    )
    .await;
    match tokio_tungstenite::connect_async(unused.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 404)
        }
        other => panic!("an undialled handle must be refused after its deadline: {other:?}"),
    }
    // The dialled one still works past the deadline.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::binary(b"echo still-$((1+1))\n".to_vec()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("still-2") {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            other => panic!("the dialled terminal ended: {other:?}"),
        }
    }
    let _ = ws.close(None).await;
    crate::common::end_session(&alice, &id).await;
}

#[tokio::test]
async fn a_websocket_keeps_counting_against_the_connection_cap() {
    let app = TestApp::spawn_with_config("max_connections = 2\nheader_timeout_s = 60\n").await;
    let cookie = app.user("alice").await.cookie_header();
    // From here on, no connection is kept idle in a pool: each request has its own.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let api = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", app.base))
            .header("cookie", &cookie)
    };
    let s: serde_json::Value = api(reqwest::Method::POST, "/api/v1/sessions")
        .json(&small_session("ws"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = s["id"].as_str().unwrap().to_string();
    // Polled on fresh connections (the pool keeps none), each taking a slot while it asks.
    let wait_for = async |status: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s: serde_json::Value = api(reqwest::Method::GET, &format!("/api/v1/sessions/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if s["status"] == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the session is not {status}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    wait_for("RUNNING").await;
    let t: serde_json::Value = api(
        reqwest::Method::POST,
        &format!("/api/v1/sessions/{id}/terminal"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    // A terminal websocket and an idle connection hold both slots.
    let (ws, _) = tokio_tungstenite::connect_async(t["url"].as_str().unwrap())
        .await
        .expect("terminal");
    let _idle = TcpStream::connect(app.addr).await.unwrap();
    let mut probe = TcpStream::connect(app.addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(2), probe.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while a websocket and an idle connection held the cap"
    );
    // The websocket closes: its slot goes to the waiting connection.
    drop(ws);
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), probe.read_to_end(&mut out))
        .await
        .expect("served once the websocket closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    drop(_idle);
    let r = api(reqwest::Method::DELETE, &format!("/api/v1/sessions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for("TERMINATED").await;
}

#[tokio::test]
async fn port_mode_app_listeners_cut_stalled_headers_too() {
    // (3 s: short enough to wait for, long enough for the API calls' kept-alive connection.)
    let app = TestApp::spawn_with_config(
        "app_mode = \"port\"\napp_ports = \"0\"\nheader_timeout_s = 3\n",
    )
    .await;
    let alice = app.user("alice").await;
    let (id, _) = crate::common::running_with_ports(&alice, "ported", &[8000]).await;
    let v = alice
        .post(&format!("/api/v1/sessions/{id}/apps/port-8000"), &json!({}))
        .await
        .expect_json(200);
    let url = reqwest::Url::parse(v["url"].as_str().unwrap()).unwrap();
    let port = url
        .port()
        .expect("port mode gives the app a port of its own");
    assert_ne!(port, app.addr.port());
    // Half a request line to the app's own listener, then nothing: cut like on the console's.
    let mut half = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    half.write_all(b"GET /heal").await.unwrap();
    let took = closed_within(&mut half, Duration::from_secs(12)).await;
    assert!(took >= Duration::from_secs(2), "closed too early: {took:?}");
}
