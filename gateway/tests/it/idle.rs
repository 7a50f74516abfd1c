//! The idle timeout against real containers: a session used only through its HTTP app (the
//! app proxy's requests), only through one long-lived app websocket, or only through a TCP
//! tunnel stays running past its idle timeout, and is ended as idle, with a reason that says
//! what was measured, once nothing moves.

use crate::common::{wait_status, Client, TestApp, USER_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{COOKIE, HOST};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// The idle timeout of the policy under test, in seconds.
const IDLE_S: u64 = 8;

/// An HTTP server on 0.0.0.0:8000 that answers every GET with "ok", and a websocket upgrade
/// with an echo of each (small) frame.
const HTTP_OK: &str = r#"
import base64, hashlib, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
            self.end_headers()
            self.wfile.flush()
            while True:
                head = self.rfile.read(2)
                if len(head) < 2 or head[0] & 0x0f == 8:
                    break
                n = head[1] & 0x7f
                mask = self.rfile.read(4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
                self.wfile.write(bytes([0x80 | (head[0] & 0x0f), n]) + data)
                self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A session with port 8000 preopened, created (not yet running); its id.
async fn create(c: &Client, name: &str) -> String {
    let mut body = crate::common::small_session(name);
    body["preopen_ports"] = json!([8000]);
    let s = c.create_session(body).await;
    s["id"].as_str().unwrap().to_string()
}

/// Sends one byte through the tunnel and reads it back; false if the tunnel ended (the echo
/// server was not listening yet).
async fn echo_byte(ws: &mut Ws) -> bool {
    if ws.send(Message::binary(b"x".to_vec())).await.is_err() {
        return false;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the echo in time")
        {
            Some(Ok(Message::Binary(b))) if b.is_empty() => return false,
            Some(Ok(Message::Binary(b))) => return b.as_ref() == b"x",
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
            Some(Ok(_)) => {}
        }
    }
}

/// Waits until the session is ended as idle: not sooner than the idle timeout after `last`
/// use (give or take the clock's second), with the reason naming what was measured.
async fn ended_as_idle(c: &Client, id: &str, last: Instant) {
    let s = wait_status(c, id, "TERMINATED", Duration::from_secs(60)).await;
    let after = last.elapsed();
    assert!(
        after >= Duration::from_secs(IDLE_S - 2),
        "ended {after:?} after the last use, before the idle timeout of {IDLE_S} s"
    );
    let reason = s["status_reason"].as_str().unwrap();
    let want = format!("The session was idle (no terminal, app or tunnel traffic) for {IDLE_S} s, the idle timeout of its policy.");
    assert!(reason.starts_with(&want), "{reason}");
}

#[tokio::test]
async fn app_and_tunnel_traffic_keep_a_session_from_idling_until_it_stops() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    admin
        .put(
            "/api/v1/users/alice/policy",
            &json!({"idle_timeout_s": IDLE_S}),
        )
        .await
        .expect_json(200);
    let web = create(&alice, "idle-web").await;
    let sock = create(&alice, "idle-sock").await;
    let tcp = create(&alice, "idle-tcp").await;
    let mut containers = Vec::new();
    for id in [&web, &sock, &tcp] {
        let s = wait_status(&alice, id, "RUNNING", Duration::from_secs(60)).await;
        containers.push(s["container_id"].as_str().unwrap().to_string());
    }
    crate::common::run_python(&containers[0], HTTP_OK);
    crate::common::run_python(&containers[1], HTTP_OK);
    crate::common::run_python(&containers[2], &crate::common::tcp_echo(8000));

    // The app through the proxy, and one tunnel websocket that stays open: no terminal.
    let (http, host, app_cookie) = crate::common::app_login(&app, &alice, &web, "port-8000").await;
    let use_app = || async {
        let r = http
            .get(format!("{}/", app.base))
            .header(HOST, &host)
            .header(COOKIE, &app_cookie)
            .send()
            .await
            .expect("a request through the app proxy");
        r.status().as_u16()
    };
    let tunnel_url = format!("ws://{}/api/v1/sessions/{tcp}/tunnel/port-8000", app.addr);
    let dial = || async {
        let mut req = tunnel_url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(
            "cookie",
            HeaderValue::from_str(&alice.cookie_header()).unwrap(),
        );
        tokio_tungstenite::connect_async(req)
            .await
            .expect("the tunnel opens")
            .0
    };
    let mut ws = dial().await;
    // The second app: one websocket through the proxy, opened once the app listens.
    let (_, sock_host, sock_cookie) =
        crate::common::app_login(&app, &alice, &sock, "port-8000").await;
    let app_ws_url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let deadline = Instant::now() + Duration::from_secs(IDLE_S / 2);
    let mut app_ws = loop {
        let mut req = app_ws_url.as_str().into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert("host", HeaderValue::from_str(&sock_host).unwrap());
        h.insert("cookie", HeaderValue::from_str(&sock_cookie).unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => break ws,
            // The "starting…" page while nothing listens yet.
            Err(e) => assert!(
                Instant::now() < deadline,
                "the app websocket never opened: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut app_up = false;
    // Twice the idle timeout of use, every second: a request to the first app, a frame over
    // the second app's one websocket and bytes over the one tunnel (no new request).
    let until = Instant::now() + Duration::from_secs(2 * IDLE_S);
    while Instant::now() < until {
        app_up |= use_app().await == 200;
        app_ws.send(Message::text("tick")).await.unwrap();
        let back = tokio::time::timeout(Duration::from_secs(30), app_ws.next())
            .await
            .expect("the app's echo in time");
        assert_eq!(back.unwrap().unwrap(), Message::text("tick"));
        if !echo_byte(&mut ws).await {
            // The echo server was not listening yet: dial again.
            ws = dial().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(app_up, "the app answered through the proxy");
    assert!(echo_byte(&mut ws).await, "the tunnel echoes");
    let last = Instant::now();
    for id in [&web, &sock, &tcp] {
        assert_eq!(
            alice.session(id).await["status"],
            "RUNNING",
            "a session used through its app or tunnel is not idle"
        );
    }

    // Nothing moves now (the websocket and the tunnel stay open, silent): all three are
    // ended as idle.
    ended_as_idle(&alice, &web, last).await;
    ended_as_idle(&alice, &sock, last).await;
    ended_as_idle(&alice, &tcp, last).await;
    drop((ws, app_ws));
}

/// With `idle_cpu_percent`, a session used all along (app requests every second) whose CPU
/// stays below the threshold is warned (`ending` events to its owner only), then ended as
/// idle with a reason naming the CPU; a session as used whose CPU is busy keeps running.
#[tokio::test]
async fn a_used_session_idle_on_cpu_is_warned_then_ended_and_a_busy_one_is_not() {
    const IDLE: u64 = 10;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.user("bob").await;
    admin
        .put(
            "/api/v1/users/alice/policy",
            &json!({"idle_timeout_s": IDLE, "idle_cpu_percent": 20}),
        )
        .await
        .expect_json(200);
    let quiet = create(&alice, "cpu-quiet").await;
    let busy = create(&alice, "cpu-busy").await;
    let mut containers = Vec::new();
    for id in [&quiet, &busy] {
        let s = wait_status(&alice, id, "RUNNING", Duration::from_secs(60)).await;
        let c = s["container_id"].as_str().unwrap().to_string();
        crate::common::run_python(&c, HTTP_OK);
        containers.push(c);
    }
    // The busy one spins (held to its 0.1 CPU: 100 % of its allocation).
    let (ok, _) = crate::common::docker(&[
        "exec",
        "-d",
        &containers[1],
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert!(ok);
    let mut events = crate::events::SseStream::open(&alice).await;
    let mut bobs = crate::events::SseStream::open(&bob).await;
    let mut users = Vec::new();
    for id in [&quiet, &busy] {
        let (http, host, cookie) = crate::common::app_login(&app, &alice, id, "port-8000").await;
        users.push((http, host, cookie));
    }
    let started = Instant::now();
    let mut warned: Option<serde_json::Value> = None;
    // Used every second, both, for up to four idle timeouts.
    while started.elapsed() < Duration::from_secs(4 * IDLE) {
        for (http, host, cookie) in &users {
            let _ = http
                .get(format!("{}/", app.base))
                .header(HOST, host)
                .header(COOKIE, cookie)
                .send()
                .await;
        }
        // Drain what came meanwhile.
        while let Ok(ev) = tokio::time::timeout(
            Duration::from_millis(50),
            events.next(Duration::from_secs(5)),
        )
        .await
        {
            if ev.event == "ending" {
                let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
                crate::common::decode_strict::<api::events::SessionEnding>(ev.data.as_bytes());
                assert_eq!(
                    v["session"],
                    quiet.as_str(),
                    "only the quiet one is warned: {v}"
                );
                if warned.is_none() && !v["ends_at"].is_null() {
                    warned = Some(v);
                }
            }
        }
        if alice.session(&quiet).await["status"] == "TERMINATED" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let s = alice.session(&quiet).await;
    assert_eq!(s["status"], "TERMINATED", "{s}");
    let reason = s["status_reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "The session was idle (CPU below 20 % of its allocation) for {IDLE} s"
        )),
        "{reason}"
    );
    let warned = warned.expect("an ending event before the end");
    assert_eq!(warned["cause"], "cpu", "{warned}");
    assert!(
        warned["detail"]
            .as_str()
            .unwrap()
            .contains("unless it gets busy"),
        "{warned}"
    );
    assert_eq!(
        alice.session(&busy).await["status"],
        "RUNNING",
        "a busy session is not idle"
    );
    let leaked = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let ev = bobs.next(Duration::from_secs(5)).await;
            if ev.event == "ending" {
                return ev;
            }
        }
    })
    .await;
    assert!(leaked.is_err(), "bob got alice's warning: {leaked:?}");
    crate::common::end_session(&alice, &busy).await;
}
