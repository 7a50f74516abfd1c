//! Losing access is immediate and complete: disabling a user ends their terminals (handles
//! refused even with the secret), tunnels, app logins and app websockets, event streams,
//! cookies and keys at once, and cancels their pending sessions while running ones stay.
//! Only a superadmin changes another admin's account; a password reset or change ends the
//! user's logins; mounts are checked again when the container is created.

use crate::common::{
    assert_problem, end_session, run_python, small_session, wait_status, wait_until, Client,
    TestApp, USER_PASSWORD,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{COOKIE, HOST};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// How long "at once" may take on a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(5);

/// Port 8000: answers plain GETs with "hello", and an `Upgrade` request with 101 followed by
/// an echo of whatever comes (enough to stand for an app's websocket). Port 8001: a TCP echo.
const SERVERS: &str = r#"
import socket, socketserver, threading
class App(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.request.recv(4096)
            if not b:
                return
            head += b
        if b"upgrade:" in head.lower():
            self.request.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            while True:
                b = self.request.recv(65536)
                if not b:
                    return
                self.request.sendall(b)
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(65536)
            if not b:
                return
            self.request.sendall(b)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
threading.Thread(target=S(("0.0.0.0", 8001), Echo).serve_forever, daemon=True).start()
S(("0.0.0.0", 8000), App).serve_forever()
"#;

async fn dial(url: &str, cookie: Option<&str>) -> Result<Ws, WsError> {
    let mut req = url.into_client_request()?;
    if let Some(c) = cookie {
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(c).unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Asserts that dialling `url` is refused with `status`.
async fn refused(url: &str, cookie: Option<&str>, status: u16) {
    match dial(url, cookie).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), status, "{url}"),
        Err(e) => panic!("dialling {url} failed, but not with HTTP {status}: {e}"),
        Ok(_) => panic!("{url} was accepted; it must be refused"),
    }
}

/// Sends `data` and reads binary frames until it came back; `None` if the socket ended.
async fn ws_echo(ws: &mut Ws, data: &[u8]) -> Option<Vec<u8>> {
    ws.send(Message::binary(data.to_vec())).await.ok()?;
    let mut got = Vec::new();
    while got.len() < data.len() {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) if b.is_empty() => return None,
            Ok(Some(Ok(Message::Binary(b)))) => got.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
    Some(got)
}

/// Reads a websocket until it ends (Close, EOF or error); panics if it is still open after
/// `AT_ONCE`. Returns the Close frame's reason, if one came.
async fn ws_ends(ws: &mut Ws, what: &str) -> String {
    tokio::time::timeout(AT_ONCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => {
                    return f.map(|f| f.reason.to_string()).unwrap_or_default()
                }
                None | Some(Err(_)) => return String::new(),
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} is still open {AT_ONCE:?} after the user was disabled"))
}

/// An event stream's raw body.
async fn open_events(
    c: &Client,
) -> futures_util::stream::BoxStream<'static, reqwest::Result<Vec<u8>>> {
    let r = c
        .http
        .get(c.url("/api/v1/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events request");
    assert_eq!(r.status(), 200);
    r.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed()
}

/// The app's host and the path of its one-use login link.
async fn app_link(c: &Client, id: &str, app: &str) -> (String, String) {
    let v = c
        .post(&format!("/api/v1/sessions/{id}/apps/{app}"), &json!({}))
        .await
        .expect_json(200);
    let u = reqwest::Url::parse(v["url"].as_str().unwrap()).unwrap();
    (
        format!("{}:{}", u.host_str().unwrap(), u.port().unwrap()),
        format!("{}?{}", u.path(), u.query().unwrap_or("")),
    )
}

/// Follows an app link like a browser on the app's host; returns the app cookie.
async fn app_login(app: &TestApp, host: &str, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}{path}", app.base))
        .header(HOST, host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the link logs in");
    crate::common::set_cookie_pair(&r)
}

async fn app_get(app: &TestApp, host: &str, cookie: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/", app.base))
        .header(HOST, host)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

/// A raw upgrade through the app proxy; returns the spliced connection after the 101.
async fn app_upgrade(app: &TestApp, host: &str, cookie: &str) -> TcpStream {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut b))
            .await
            .expect("upgrade answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed during the upgrade: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

#[tokio::test]
async fn disabling_a_user_ends_everything_they_hold_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let key = alice
        .post("/api/v1/keys", &json!({"name": "laptop"}))
        .await
        .expect_json(201)["key"]
        .as_str()
        .unwrap()
        .to_string();
    app.set_policy("alice", json!({"max_concurrent_sessions": 1}))
        .await;
    let mut body = small_session("work");
    body["preopen_ports"] = json!([8000, 8001]);
    let s = alice.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    run_python(s["container_id"].as_str().unwrap(), SERVERS);
    // A second session waits: the policy allows one at a time.
    let queued = alice.create_session(small_session("queued")).await;
    let queued = queued["id"].as_str().unwrap().to_string();
    assert_eq!(queued_status(&alice, &queued).await, "PENDING");

    // Everything alice can hold open, each shown to work first.
    let cookie = alice.cookie_header();
    let term_url = alice.terminal_url(&id).await;
    let mut term = dial(&term_url, Some(&cookie)).await.expect("terminal");
    term.send(Message::binary(b"echo ok-$((40+2))\n".to_vec()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("ok-42") {
        match tokio::time::timeout(Duration::from_secs(20), term.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            other => panic!("terminal ended early: {other:?}"),
        }
    }
    // A shell that ignores hang-ups and never stops printing: the revocation must still
    // close the terminal (it once did so only when the shell fell quiet).
    term.send(Message::binary(b"trap '' HUP; yes flood\n".to_vec()))
        .await
        .unwrap();
    while !String::from_utf8_lossy(&seen).contains("flood\r\nflood") {
        match tokio::time::timeout(Duration::from_secs(20), term.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            other => panic!("terminal ended early: {other:?}"),
        }
    }
    let unused_url = alice.terminal_url(&id).await;
    let tunnel_url = format!(
        "{}/api/v1/sessions/{id}/tunnel/port-8001",
        app.base.replacen("http", "ws", 1)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut tunnel = loop {
        if let Ok(mut ws) = dial(&tunnel_url, Some(&cookie)).await {
            if ws_echo(&mut ws, b"ping").await.as_deref() == Some(&b"ping"[..]) {
                break ws;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tunnel never echoed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (host, link) = app_link(&alice, &id, "port-8000").await;
    let app_cookie = app_login(&app, &host, &link).await;
    wait_until("the app answers", Duration::from_secs(30), || async {
        let r = app_get(&app, &host, &app_cookie).await;
        r.status() == 200 && r.text().await.unwrap() == "hello"
    })
    .await;
    let mut app_ws = app_upgrade(&app, &host, &app_cookie).await;
    app_ws.write_all(b"app-echo").await.unwrap();
    let mut buf = [0u8; 8];
    app_ws.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"app-echo");
    let mut events = open_events(&alice).await;
    // A follow of the session's log (it waits for output that never comes).
    let follow = alice
        .http
        .get(alice.url(&format!("/api/v1/sessions/{id}/logs?follow=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(follow.status(), 200);
    let mut follow = follow.bytes_stream();

    // The admin disables alice.
    let r = admin
        .patch("/api/v1/users/alice", &json!({"disabled": true}))
        .await;
    assert_eq!(r.expect_json(200)["disabled"], true);

    // The terminal is closed with a reason, and neither handle opens again with its secret.
    let why = ws_ends(&mut term, "the terminal").await;
    assert!(why.contains("revoked"), "close reason: {why:?}");
    refused(&term_url, None, 404).await;
    refused(&unused_url, None, 404).await;
    // The tunnel and the app's websocket are cut; the app cookie opens nothing.
    ws_ends(&mut tunnel, "the tunnel").await;
    let n = tokio::time::timeout(AT_ONCE, app_ws.read(&mut buf))
        .await
        .expect("the app websocket is cut at once");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the app websocket still carries data"
    );
    assert_eq!(app_get(&app, &host, &app_cookie).await.status(), 401);
    // The log follow ends.
    tokio::time::timeout(AT_ONCE, async {
        while let Some(Ok(_)) = follow.next().await {}
    })
    .await
    .expect("the log follow is cut at once");
    // The event stream ends.
    tokio::time::timeout(AT_ONCE, async {
        while let Some(Ok(_)) = events.next().await {}
    })
    .await
    .expect("the event stream ends at once");
    // Cookie and key are dead; the key stays revoked when the account is enabled again.
    assert_problem(&alice.get("/api/v1/me").await, 401, "unauthenticated");
    let with_key = |c: &Client| c.http.get(c.url("/api/v1/me")).bearer_auth(&key);
    let anon = app.anon();
    assert_problem(&anon.send(with_key(&anon)).await, 401, "unauthenticated");

    // The pending session was cancelled with the reason; the running one runs on, and the
    // admin still sees it (and ends it).
    let q = admin.session(&queued).await;
    assert_eq!(q["status"], "CANCELLED", "{q}");
    assert!(
        q["status_reason"].as_str().unwrap().contains("disabled"),
        "{q}"
    );
    let r = admin.session(&id).await;
    assert_eq!(r["status"], "RUNNING", "{r}");
    assert!(admin
        .sessions()
        .await
        .iter()
        .any(|s| s["id"] == id.as_str()));

    admin
        .patch("/api/v1/users/alice", &json!({"disabled": false}))
        .await
        .expect_json(200);
    assert_problem(&anon.send(with_key(&anon)).await, 401, "unauthenticated");
    assert_eq!(app_get(&app, &host, &app_cookie).await.status(), 401);
    refused(&term_url, None, 404).await;
    // Enabled again, alice logs in afresh and her session is hers again.
    let alice = app.login("alice", USER_PASSWORD).await;
    let url = alice.terminal_url(&id).await;
    let mut ws = dial(&url, Some(&alice.cookie_header()))
        .await
        .expect("a new terminal");
    let _ = ws.close(None).await;
    end_session(&admin, &id).await;
}

async fn queued_status(c: &Client, id: &str) -> String {
    c.session(id).await["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn only_a_superadmin_changes_another_admins_account() {
    let app = TestApp::spawn().await;
    let root = app.admin().await;
    app.create_user("ada", USER_PASSWORD, "admin").await;
    app.create_user("bea", USER_PASSWORD, "admin").await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let ada = app.login("ada", USER_PASSWORD).await;
    for body in [
        json!({"password": "a-new-password-1"}),
        json!({"role": "user"}),
        json!({"disabled": true}),
    ] {
        let p = assert_problem(
            &ada.patch("/api/v1/users/bea", &body).await,
            403,
            "forbidden",
        );
        assert!(p["detail"].as_str().unwrap().contains("superadmin"), "{p}");
        assert_problem(
            &ada.patch("/api/v1/users/admin", &body).await,
            403,
            "forbidden",
        );
    }
    // bea is untouched: her password still works.
    app.login("bea", USER_PASSWORD).await;
    // An admin still manages plain users, and cannot raise anyone to superadmin.
    ada.patch(
        "/api/v1/users/alice",
        &json!({"password": "a-new-password-1"}),
    )
    .await
    .expect_json(200);
    assert_problem(
        &ada.patch("/api/v1/users/alice", &json!({"role": "superadmin"}))
            .await,
        403,
        "forbidden",
    );
    // An admin raised to admin is out of other admins' reach from then on.
    ada.patch("/api/v1/users/alice", &json!({"role": "admin"}))
        .await
        .expect_json(200);
    assert_problem(
        &ada.patch("/api/v1/users/alice", &json!({"disabled": true}))
            .await,
        403,
        "forbidden",
    );
    // The superadmin may do all of it.
    root.patch(
        "/api/v1/users/bea",
        &json!({"password": "a-new-password-2"}),
    )
    .await
    .expect_json(200);
    root.patch("/api/v1/users/bea", &json!({"role": "user"}))
        .await
        .expect_json(200);
    app.login("bea", "a-new-password-2").await;
}

#[tokio::test]
async fn a_password_reset_or_change_ends_the_users_logins() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let laptop = app.login("alice", USER_PASSWORD).await;
    let phone = app.login("alice", USER_PASSWORD).await;
    let mut events = open_events(&laptop).await;

    // An administrator's reset ends every login and live stream of hers.
    admin
        .patch(
            "/api/v1/users/alice",
            &json!({"password": "a-new-password-1"}),
        )
        .await
        .expect_json(200);
    assert_problem(&laptop.get("/api/v1/me").await, 401, "unauthenticated");
    assert_problem(&phone.get("/api/v1/me").await, 401, "unauthenticated");
    tokio::time::timeout(AT_ONCE, async {
        while let Some(Ok(_)) = events.next().await {}
    })
    .await
    .expect("the event stream ends at once");

    // Her own change ends her other logins and replaces the one she used.
    let laptop = app.login("alice", "a-new-password-1").await;
    let phone = app.login("alice", "a-new-password-1").await;
    let stolen = laptop.cookie_header();
    let r = laptop
        .post(
            "/api/v1/me/password",
            &json!({"current_password": "a-new-password-1", "new_password": "a-new-password-2"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(
        crate::common::session_cookie(&r.headers).is_some(),
        "a fresh login cookie replaces the old one"
    );
    laptop.get("/api/v1/me").await.expect_json(200);
    assert_problem(&phone.get("/api/v1/me").await, 401, "unauthenticated");
    let anon = app.anon();
    let r = anon
        .send(anon.http.get(anon.url("/api/v1/me")).header(COOKIE, stolen))
        .await;
    assert_problem(&r, 401, "unauthenticated");
}

/// Shares `owner`'s folder `name` with `user` at `perm`; returns the folder id.
async fn share(owner: &Client, user_client: &Client, user: &str, name: &str, perm: &str) -> String {
    let f = match owner.get("/api/v1/vfolders").await.expect_json(200) {
        Value::Array(v) => v.into_iter().find(|f| f["name"] == name),
        _ => None,
    };
    let id = match f {
        Some(f) => f["id"].as_str().unwrap().to_string(),
        None => owner
            .post("/api/v1/vfolders", &json!({"name": name}))
            .await
            .expect_json(201)["id"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    let inv = owner
        .post(
            &format!("/api/v1/vfolders/{id}/invitations"),
            &json!({"user": user, "permission": perm}),
        )
        .await
        .expect_json(201);
    user_client
        .post(
            &format!("/api/v1/invitations/{}/accept", inv["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    id
}

#[tokio::test]
async fn mounts_are_checked_again_when_the_container_is_created() {
    let app = TestApp::spawn().await;
    let bob = app.user("bob").await;
    let alice = app.user("alice").await;
    app.set_policy("alice", json!({"max_concurrent_sessions": 1}))
        .await;
    let gone = share(&bob, &alice, "alice", "gone", "rw").await;
    let lowered = share(&bob, &alice, "alice", "lowered", "rw").await;
    // One running session holds alice's only slot; two more wait, mounting bob's folders rw.
    let blocker = alice.create_session(small_session("blocker")).await;
    let blocker = blocker["id"].as_str().unwrap().to_string();
    wait_status(&alice, &blocker, "RUNNING", Duration::from_secs(60)).await;
    let mut wait_ids = Vec::new();
    for (name, folder) in [("uses-gone", "gone"), ("uses-lowered", "lowered")] {
        let mut body = small_session(name);
        body["mounts"] = json!([{"vfolder": folder, "mode": "rw"}]);
        let s = alice.create_session(body).await;
        assert_eq!(s["status"], "PENDING", "{s}");
        wait_ids.push(s["id"].as_str().unwrap().to_string());
    }
    // While they wait, bob unshares one and lowers the other to read-only.
    let r = bob
        .delete(&format!("/api/v1/vfolders/{gone}/members/alice"))
        .await;
    assert!(r.status < 300, "unshare: {}", r.text());
    let r = bob
        .delete(&format!("/api/v1/vfolders/{lowered}/members/alice"))
        .await;
    assert!(r.status < 300, "unshare: {}", r.text());
    share(&bob, &alice, "alice", "lowered", "ro").await;

    end_session(&alice, &blocker).await;
    for (id, folder, words) in [
        (&wait_ids[0], "gone", "no longer available"),
        (&wait_ids[1], "lowered", "read-only"),
    ] {
        let s = wait_status(&alice, id, "ERROR", Duration::from_secs(60))
            .await
            .clone();
        let reason = s["status_reason"].as_str().unwrap();
        assert!(
            reason.contains(folder) && reason.contains(words),
            "the reason names the folder: {reason}"
        );
        assert!(
            crate::common::containers_labelled(&format!("berth.session={id}")).is_empty(),
            "no container may be created for {id}"
        );
    }
}
