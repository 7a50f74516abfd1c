//! TCP tunnels to a real echo server in a real container: the raw websocket
//! (`GET /api/v1/sessions/{id}/tunnel/{app}`) with the console cookie, then `berth app` as a
//! child process: an interactive exchange, an 8 MiB bulk copy echoed byte for byte, two
//! connections at once, a failing connection that leaves the listener up, and Ctrl-C. Other
//! users and unknown apps get 404 with a sentence.

use crate::common::{end_session, TestApp, ADMIN_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use rand::RngCore;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A TCP server on 0.0.0.0:8001 that says one line and hangs up.
const BYE: &str = r#"
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"bye\n")
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("0.0.0.0", 8001), H).serve_forever()
"#;

const BULK: usize = 8 << 20;
const STEP: Duration = Duration::from_secs(60);

async fn dial(url: &str, cookie: &str) -> Result<Ws, WsError> {
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("cookie", HeaderValue::from_str(cookie).unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Asserts the handshake is refused with `status` and a problem+json sentence; returns it.
async fn refused(url: &str, cookie: &str, status: u16) -> String {
    match dial(url, cookie).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), status, "{url}");
            let body = resp.body().clone().unwrap_or_default();
            let p: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!("not a problem ({e}): {}", String::from_utf8_lossy(&body))
            });
            let detail = p["detail"].as_str().unwrap_or("").to_string();
            assert!(
                detail.starts_with(char::is_uppercase) && detail.ends_with('.'),
                "a sentence: {p}"
            );
            detail
        }
        Ok(_) => panic!("{url}: the tunnel opened"),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// Sends `data` and reads binary frames until as many bytes came back; `None` if the tunnel
/// closed first (the app is not listening yet).
async fn ws_echo(ws: &mut Ws, data: &[u8]) -> Option<Vec<u8>> {
    ws.send(Message::binary(data.to_vec())).await.ok()?;
    let mut got = Vec::new();
    while got.len() < data.len() {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("echo in time")
        {
            // An empty frame is the app's EOF (nothing listening yet behind Docker's forwarder).
            Some(Ok(Message::Binary(b))) if b.is_empty() => return None,
            Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
    Some(got)
}

/// Writes `data` while reading the echo back concurrently; asserts it is byte-identical.
pub async fn bulk_echo(stream: TcpStream, data: Arc<Vec<u8>>) -> TcpStream {
    let (mut rx, mut tx) = stream.into_split();
    let out = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in out.chunks(100_000) {
            tx.write_all(chunk).await.expect("write to the tunnel");
        }
        tx
    });
    let mut got = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(180), rx.read_exact(&mut got))
        .await
        .expect("the echo came back in time")
        .expect("read the echo");
    let tx = writer.await.unwrap();
    if got != *data {
        let at = got.iter().zip(data.iter()).position(|(a, b)| a != b);
        panic!("the echo differs from what was sent, first at byte {at:?}");
    }
    rx.reunite(tx).unwrap()
}

/// Writes lines and reads each back before the next, as an interactive session does.
pub async fn interactive(stream: TcpStream, tag: &str) -> TcpStream {
    let (rx, mut tx) = stream.into_split();
    let mut rx = tokio::io::BufReader::new(rx);
    for i in 0..10 {
        let line = format!("{tag} line {i}: {}\n", "x".repeat(i * 7));
        tx.write_all(line.as_bytes()).await.unwrap();
        let mut back = String::new();
        tokio::time::timeout(STEP, rx.read_line(&mut back))
            .await
            .expect("the line came back in time")
            .unwrap();
        assert_eq!(back, line);
    }
    rx.into_inner().reunite(tx).unwrap()
}

/// Reads until EOF (or a reset); fails if the peer keeps the connection open.
async fn expect_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("the connection ended in time")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// `berth app …` running in the background: stdout lines on a channel, stderr collected.
pub struct AppCli {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl AppCli {
    pub fn spawn(home: &std::path::Path, args: &[&str]) -> AppCli {
        let mut child = berth(home, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berth app");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                let _ = tx.send(l);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        AppCli {
            child,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stdout line, within 30 s.
    pub fn first_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("berth app printed nothing; stderr:\n{}", self.stderr()))
    }
}

impl Drop for AppCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `berth ARGS` with its own HOME and none of the outer berth settings.
fn berth(home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("BERTH_URL")
        .env_remove("BERTH_KEY")
        .env_remove("BERTH_DATA_DIR");
    cmd
}

/// A HOME of its own (removed on drop) where the CLI has logged in to `app` as the admin.
pub fn admin_cli_home(app: &TestApp, prefix: &str) -> tempfile::TempDir {
    let home = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let (code, _, err) = berth_run(
        home.path(),
        &["login", &app.base, "--username", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "login: {err}");
    home
}

/// Runs `berth ARGS` to its end: (exit code, stdout, stderr).
pub fn berth_run(home: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = berth(home, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start berth");
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tcp_apps_tunnel_over_websockets_and_through_berth_app() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let cookie = admin.cookie_header();
    let (id, container) = crate::common::running_with_ports(&admin, "tun", &[8000, 8001]).await;
    crate::common::run_python(&container, &crate::common::tcp_echo(8000));
    crate::common::run_python(&container, BYE);
    let url = format!("ws://{}/api/v1/sessions/{id}/tunnel/port-8000", app.addr);

    // (a) The raw tunnel with the console cookie, once the echo server listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ws = loop {
        let mut ws = dial(&url, &cookie).await.expect("the tunnel opens");
        if ws_echo(&mut ws, b"hello\n").await.as_deref() == Some(b"hello\n") {
            break ws;
        }
        assert!(
            Instant::now() < deadline,
            "the echo server never answered through the tunnel"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for i in 0..5u8 {
        let msg = vec![i; 1000 * (i as usize + 1)];
        assert_eq!(ws_echo(&mut ws, &msg).await.as_deref(), Some(&msg[..]));
    }
    // A half-close: 1 MiB, then our EOF (an empty frame); the whole echo still comes back,
    // then the app's EOF (an empty frame), then the server's Close.
    let mut half = dial(&url, &cookie).await.expect("the tunnel opens");
    let mut blob = vec![0u8; 1 << 20];
    rand::rng().fill_bytes(&mut blob);
    half.send(Message::binary(blob.clone())).await.unwrap();
    half.send(Message::binary(Vec::new())).await.unwrap();
    let mut back = Vec::new();
    let mut app_eof = false;
    let closed = tokio::time::timeout(STEP, async {
        while let Some(Ok(m)) = half.next().await {
            match m {
                Message::Binary(b) if b.is_empty() => app_eof = true,
                Message::Binary(b) => back.extend_from_slice(&b),
                Message::Close(_) => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the server closes after both directions ended");
    assert!(app_eof, "the app's EOF is passed on");
    assert_eq!(back.len(), blob.len(), "nothing is lost after a half-close");
    assert!(back == blob);

    // A close is answered with a close and the stream ends.
    ws.close(None).await.unwrap();
    let end = tokio::time::timeout(STEP, async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                return true;
            }
        }
        true
    })
    .await;
    assert!(end.is_ok(), "the tunnel did not close");

    // (c) Another user sees no such session; an unknown app is a 404 sentence; no
    // credentials is a 401.
    let bob = app.user("bob").await;
    let other = refused(&url, &bob.cookie_header(), 404).await;
    let unknown = refused(
        &url.replace("/tunnel/port-8000", "/tunnel/nope"),
        &cookie,
        404,
    )
    .await;
    assert!(unknown.contains("nope"), "{unknown}");
    refused(&url, "theme=dark", 401).await;

    // (b) The CLI: log in into a HOME of its own, then `berth app` as a child process.
    let home = admin_cli_home(&app, "berth-tunnel-home-");

    // What it refuses before listening.
    let (code, _, err) = berth_run(home.path(), &["app", "tun", "nope"], "");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "berth: Session \"tun\" has no app named \"nope\"; its apps: port-8000, port-8001."
        ),
        "{err}"
    );
    let (code, _, err) = berth_run(home.path(), &["app", "no-such", "port-8000"], "");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("berth: There is no session named \"no-such\"."),
        "{err}"
    );
    let (code, _, err) = berth_run(home.path(), &["app", &id, "port-8000", "--bind", "x"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("berth: cannot listen on x"), "{err}");

    let mut cli = AppCli::spawn(
        home.path(),
        &["app", "tun", "port-8000", "--bind", "127.0.0.1:0"],
    );
    let line = cli.first_line();
    let rest = line
        .strip_prefix("Forwarding ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let (addr, rest) = rest.split_once(' ').unwrap();
    assert_eq!(rest, "→ tun/port-8000 (Ctrl-C to stop)", "{line}");
    let addr: SocketAddr = addr.parse().expect("the printed address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    // Interactive, then 8 MiB both ways concurrently, on one connection; then EOF.
    let mut data = vec![0u8; BULK];
    rand::rng().fill_bytes(&mut data);
    let data = Arc::new(data);
    let conn = TcpStream::connect(addr).await.unwrap();
    let conn = interactive(conn, "first").await;
    let conn = bulk_echo(conn, data.clone()).await;
    let mut conn = interactive(conn, "again").await;
    conn.shutdown().await.unwrap();
    expect_eof(&mut conn).await;

    // Two connections at once, each interactive and bulk.
    let one = async {
        let c = TcpStream::connect(addr).await.unwrap();
        let c = interactive(c, "one").await;
        bulk_echo(c, data.clone()).await
    };
    let two = async {
        let c = TcpStream::connect(addr).await.unwrap();
        let c = bulk_echo(c, data.clone()).await;
        interactive(c, "two").await
    };
    let (mut one, two) = tokio::join!(one, two);
    // The first ends; the second still works.
    one.shutdown().await.unwrap();
    expect_eof(&mut one).await;
    let mut two = interactive(two, "two, still").await;
    two.shutdown().await.unwrap();
    expect_eof(&mut two).await;
    assert!(
        !cli.stderr().contains("berth:"),
        "no connection failed: {}",
        cli.stderr()
    );

    // The app hanging up is an EOF for the local client, after what it sent.
    let bye = AppCli::spawn(home.path(), &["app", &id, "port-8001"]);
    let line = bye.first_line();
    let bye_addr: SocketAddr = line
        .strip_prefix("Forwarding ")
        .and_then(|r| r.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(line.ends_with("→ tun/port-8001 (Ctrl-C to stop)"), "{line}");
    for _ in 0..3 {
        let mut c = TcpStream::connect(bye_addr).await.unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Until the server listens, the tunnel ends at once with nothing.
        loop {
            tokio::time::timeout(STEP, c.read_to_end(&mut got))
                .await
                .expect("the app's hang-up reaches the local client")
                .unwrap();
            if !got.is_empty() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            c = TcpStream::connect(bye_addr).await.unwrap();
        }
        assert_eq!(got, b"bye\n");
    }
    // Only "not listening yet" may have failed.
    for l in bye.stderr().lines() {
        assert!(
            l.ends_with("the server ended the tunnel: the app is not listening"),
            "{l}"
        );
    }
    drop(bye);

    // Once the session has ended, a connection fails with the server's sentence on stderr,
    // and the listener stays up.
    end_session(&admin, &id).await;
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr)
            .await
            .expect("the listener is still up");
        expect_eof(&mut c).await;
    }
    crate::common::wait_until("the failure on stderr", Duration::from_secs(10), || {
        let e = cli.stderr();
        async move { e.matches("berth: connection from 127.0.0.1:").count() >= 2 }
    })
    .await;
    let err = cli.stderr();
    assert!(
        err.contains("The session is TERMINATED, not RUNNING"),
        "the server's sentence: {err}"
    );
    assert!(cli.child.try_wait().unwrap().is_none(), "still listening");

    // Ctrl-C stops it cleanly.
    let pid = cli.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = cli.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "berth app ignored Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", cli.stderr());
    drop(cli);
    assert!(
        !other.contains(&id),
        "the 404 tells nothing about the session: {other}"
    );
}
