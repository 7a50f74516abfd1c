//! Graceful shutdown of the real `berth serve`: on SIGTERM (or SIGINT) a request in flight
//! completes, an open terminal gets a Close frame 1001 (going away), an event stream ends,
//! the process exits 0 within the bound, and nothing is left in ERROR by it.

use crate::common::{run_python, small_session, wait_status, TestApp, USER_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const START: Duration = Duration::from_secs(60);
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Dials a websocket with the login cookie.
async fn dial(url: &str, cookie: &str) -> Option<Ws> {
    let mut req = url.into_client_request().ok()?;
    req.headers_mut()
        .insert("cookie", HeaderValue::from_str(cookie).ok()?);
    tokio_tungstenite::connect_async(req)
        .await
        .ok()
        .map(|(ws, _)| ws)
}

/// Reads until a Close frame comes; panics if the socket ends without one or after 10 s.
async fn close_frame(ws: &mut Ws, what: &str) -> CloseCode {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code,
                Some(Ok(_)) => continue,
                other => panic!("{what} ended without a Close frame with a code: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: no Close frame within 10 s"))
}

/// In-flight requests get 5 s and work in flight 10 s more; a clean stop is much faster.
const EXIT_WITHIN: Duration = Duration::from_secs(16);

#[tokio::test]
async fn sigterm_finishes_requests_closes_websockets_and_exits_zero() {
    let mut app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut body = small_session("stays");
    body["preopen_ports"] = json!([8001]);
    let id = alice.create_session(body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = wait_status(&alice, &id, "RUNNING", START).await;
    run_python(
        s["container_id"].as_str().unwrap(),
        &crate::common::tcp_echo(8001),
    );
    let cookie = alice.cookie_header();

    // An open terminal.
    let url = alice.terminal_url(&id).await;
    let mut term = dial(&url, &cookie).await.expect("terminal");
    term.send(Message::Binary(b"echo ready\n".to_vec().into()))
        .await
        .unwrap();

    // An open tunnel, shown to echo.
    let tunnel_url = format!(
        "{}/api/v1/sessions/{id}/tunnel/port-8001",
        app.base.replacen("http", "ws", 1)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut tunnel = loop {
        if let Some(mut ws) = dial(&tunnel_url, &cookie).await {
            ws.send(Message::Binary(b"ping".to_vec().into()))
                .await
                .unwrap();
            if let Ok(Some(Ok(Message::Binary(b)))) =
                tokio::time::timeout(Duration::from_secs(5), ws.next()).await
            {
                if &b[..] == b"ping" {
                    break ws;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tunnel never echoed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // An open event stream.
    let events = alice
        .http
        .get(alice.url("/api/v1/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), 200);
    let mut events = events.bytes_stream();

    // A request in flight: headers and half the body sent before the signal, the rest after.
    let body = format!(r#"{{"username":"alice","password":"{USER_PASSWORD}"}}"#);
    let (first, rest) = body.split_at(body.len() / 2);
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        app.addr,
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // The server has read the headers and is waiting for the body.
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    tcp.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("the request in flight is answered")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight completes: {answer}"
    );

    // The terminal and the tunnel are closed as going away.
    assert_eq!(
        close_frame(&mut term, "the terminal").await,
        CloseCode::Away
    );
    assert_eq!(
        close_frame(&mut tunnel, "the tunnel").await,
        CloseCode::Away
    );

    // The event stream ends cleanly.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = events.next().await {
            chunk.expect("the event stream ends cleanly, not broken");
        }
    })
    .await
    .expect("the event stream ends");

    let status = app
        .wait_exit(EXIT_WITHIN)
        .await
        .expect("berth exits within the bound");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let log = app.log();
    assert!(log.contains("berth stopped"), "{log}");

    // Nothing was ended by the shutdown: the session runs on under the next gateway.
    app.restart().await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let s = alice.session(&id).await;
    assert_eq!(s["status"], "RUNNING", "{s}");
    let history = alice.history(&id).await;
    assert!(
        history.iter().all(|h| h["status"] != "ERROR"),
        "{history:?}"
    );
}

#[tokio::test]
async fn sigint_stops_it_too() {
    let mut app = TestApp::spawn().await;
    app.signal("INT");
    let status = app
        .wait_exit(EXIT_WITHIN)
        .await
        .expect("berth exits within the bound");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}
