//! Terminals: the websocket round trip with resize and exit, handle authorisation, and flow
//! control under a flood.

use crate::common::{assert_problem, small_session, wait_status, Client, TestApp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const START: Duration = Duration::from_secs(60);
const EXPECT: Duration = Duration::from_secs(20);

/// A terminal websocket and everything it printed so far.
struct Term {
    ws: Ws,
    out: Vec<u8>,
    /// Output before this offset was already matched.
    cursor: usize,
}

enum Frame {
    Bytes,
    Control(Value),
    Closed,
}

async fn dial(url: &str, cookie: Option<&str>) -> Result<Ws, WsError> {
    let mut req = url.into_client_request()?;
    if let Some(c) = cookie {
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(c).expect("cookie header"));
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Asserts that dialling `url` is refused with HTTP 404.
#[track_caller]
fn refused_404<'a>(
    url: &'a str,
    cookie: Option<&'a str>,
) -> impl std::future::Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        match dial(url, cookie).await {
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 404, "{caller}: {url}");
                let ct = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                assert_eq!(ct, "application/problem+json", "{caller}");
            }
            Err(e) => panic!("{caller}: dialling {url} failed, but not with a 404: {e}"),
            Ok(_) => panic!("{caller}: {url} was accepted; it must be refused"),
        }
    }
}

impl Term {
    async fn open(url: &str, cookie: Option<&str>) -> Term {
        let ws = dial(url, cookie)
            .await
            .unwrap_or_else(|e| panic!("cannot open the terminal {url}: {e}"));
        Term {
            ws,
            out: Vec::new(),
            cursor: 0,
        }
    }

    async fn send(&mut self, bytes: &str) {
        self.ws
            .send(Message::binary(bytes.as_bytes().to_vec()))
            .await
            .expect("send input");
    }

    async fn resize(&mut self, cols: u16, rows: u16) {
        let ctl = json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        self.ws.send(Message::text(ctl)).await.expect("send resize");
    }

    /// The next data or control frame.
    async fn frame(&mut self) -> Frame {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    self.out.extend_from_slice(&b);
                    return Frame::Bytes;
                }
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("control frame is not JSON ({e}): {t}"));
                    return Frame::Control(v);
                }
                Some(Ok(Message::Close(_))) | None => return Frame::Closed,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("terminal websocket broke: {e}"),
            }
        }
    }

    /// Reads a reconnect's replay up to its marker; the bytes it says were replayed.
    async fn replayed(&mut self) -> u64 {
        loop {
            match tokio::time::timeout(EXPECT, self.frame())
                .await
                .expect("a replay in time")
            {
                Frame::Bytes => {}
                Frame::Control(v) => {
                    assert_eq!(v["type"], "replayed", "{v}");
                    return v["bytes"].as_u64().unwrap();
                }
                Frame::Closed => panic!("closed during the replay"),
            }
        }
    }

    /// Reads until `needle` appears in output not matched before.
    async fn expect(&mut self, needle: &str) {
        let found = tokio::time::timeout(EXPECT, async {
            loop {
                if let Some(pos) = find(&self.out[self.cursor..], needle.as_bytes()) {
                    self.cursor += pos + needle.len();
                    return true;
                }
                match self.frame().await {
                    Frame::Bytes => {}
                    Frame::Control(v) => {
                        panic!("unexpected control frame {v} waiting for {needle}")
                    }
                    Frame::Closed => return false,
                }
            }
        })
        .await;
        let tail = String::from_utf8_lossy(&self.out[self.cursor..]).into_owned();
        match found {
            Ok(true) => {}
            Ok(false) => panic!("the terminal closed before {needle:?} appeared; output: {tail:?}"),
            Err(_) => panic!("{needle:?} did not appear within {EXPECT:?}; output: {tail:?}"),
        }
    }

    /// Reads until the server's exit control frame; returns its code.
    async fn exit_code(&mut self) -> i64 {
        let v = tokio::time::timeout(EXPECT, async {
            loop {
                match self.frame().await {
                    Frame::Bytes => {}
                    Frame::Control(v) => return v,
                    Frame::Closed => panic!("closed without an exit frame"),
                }
            }
        })
        .await
        .expect("an exit frame in time");
        assert_eq!(v["type"], "exit", "{v}");
        v["code"].as_i64().expect("exit code")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A running session of `c`'s and its id.
async fn running_session(c: &Client, name: &str) -> String {
    let s = c.create_session(small_session(name)).await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_status(c, &id, "RUNNING", START).await;
    id
}

#[tokio::test]
async fn terminal_round_trip_with_resize_and_exit() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = running_session(&alice, "term").await;

    let url = alice.terminal_url(&id).await;
    let prefix = format!("ws://{}/api/v1/terminals/", app.addr);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.contains("?secret="), "{url}");

    // Refusals first: none of them may use up the handle.
    let (without_secret, _) = url.split_once('?').unwrap();
    refused_404(without_secret, None).await;
    let wrong = format!("{without_secret}?secret={}", "0".repeat(64));
    refused_404(&wrong, None).await;
    refused_404(&url, Some(&bob.cookie_header())).await;
    let other = format!("{prefix}{}?secret=abc", uuid::Uuid::new_v4());
    refused_404(&other, None).await;

    let mut t = Term::open(&url, Some(&alice.cookie_header())).await;
    t.resize(100, 30).await;
    t.send("echo hello-$((6*7))\r").await;
    t.expect("hello-42").await;
    t.send("stty size\r").await;
    t.expect("30 100").await;
    t.resize(120, 40).await;
    t.send("stty size\r").await;
    t.expect("40 120").await;
    // A malformed or out-of-range control frame is ignored, not fatal.
    t.ws.send(Message::text("{\"type\":\"resize\",\"cols\":0,\"rows\":5}"))
        .await
        .unwrap();
    t.ws.send(Message::text("not json")).await.unwrap();
    t.send("echo $((40+2))-$HOME\r").await;
    t.expect("42-/home/work").await;
    t.send("exit\r").await;
    assert_eq!(t.exit_code().await, 0);
    drop(t);

    // The handle is spent once its shell exited.
    refused_404(&url, Some(&alice.cookie_header())).await;

    // A fresh handle works without a cookie (the handle is the authorisation), and is gone
    // once its connection goes.
    let url2 = alice.terminal_url(&id).await;
    assert_ne!(url, url2);
    let mut t = Term::open(&url2, None).await;
    t.send("exit 7\r").await;
    assert_eq!(t.exit_code().await, 7);
    drop(t);
    refused_404(&url2, None).await;

    // A session that does not run has no terminal.
    alice
        .delete(&format!("/api/v1/sessions/{id}"))
        .await
        .expect_json(200);
    wait_status(&alice, &id, "TERMINATED", START).await;
    let r = alice
        .post(&format!("/api/v1/sessions/{id}/terminal"), &json!({}))
        .await;
    assert_problem(&r, 409, "conflict");
}

#[tokio::test]
async fn unread_handle_is_closed_with_its_session() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = running_session(&alice, "gone").await;
    let url = alice.terminal_url(&id).await;
    alice
        .delete(&format!("/api/v1/sessions/{id}"))
        .await
        .expect_json(200);
    wait_status(&alice, &id, "TERMINATED", START).await;
    refused_404(&url, None).await;
}

/// Resident memory of a process from `/proc/PID/status`, in bytes: `VmRSS` (now) or
/// `VmHWM` (peak).
fn rss(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[tokio::test]
async fn terminal_flood_is_flow_controlled_and_complete() {
    const FLOOD: u64 = 50_000_000;
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = running_session(&alice, "flood").await;
    let url = alice.terminal_url(&id).await;
    let mut t = Term::open(&url, None).await;
    t.resize(80, 24).await;
    t.send("echo ready-$((1+1))\r").await;
    t.expect("ready-2").await;
    t.out.clear();
    t.cursor = 0;

    let before = rss(app.pid(), "VmRSS");
    t.send(&format!(
        "stty -opost; yes | head -c {FLOOD}; stty opost; echo END-$((40+2))\r"
    ))
    .await;
    let started = Instant::now();
    // A stalled reader: the flood must wait for it inside the container, not pile up in
    // the gateway's memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stalled_peak = rss(app.pid(), "VmHWM");
    assert!(
        stalled_peak.saturating_sub(before) < 32 << 20,
        "the gateway buffered the flood for a stalled reader: RSS {} MiB before, peak {} MiB",
        before >> 20,
        stalled_peak >> 20
    );
    let mut ys: u64 = 0;
    let mut bytes: u64 = 0;
    let mut tail: Vec<u8> = Vec::new();
    let mut frames = 0u32;
    let finished = tokio::time::timeout(Duration::from_secs(150), async {
        loop {
            // A slow reader for a while, then a fast one.
            if frames < 20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let Some(msg) = t.ws.next().await else {
                return false;
            };
            let b = match msg.expect("terminal websocket") {
                Message::Binary(b) => b,
                Message::Close(_) => return false,
                Message::Text(c) => panic!("unexpected control frame {c}"),
                _ => continue,
            };
            frames += 1;
            bytes += b.len() as u64;
            // Count "y\n" lines, including one split across two frames.
            let mut prev = tail.last().copied().unwrap_or(0);
            for &c in b.iter() {
                if prev == b'y' && c == b'\n' {
                    ys += 1;
                }
                prev = c;
            }
            tail.extend_from_slice(&b);
            if find(&tail, b"END-42").is_some() {
                return true;
            }
            let keep = tail.len().saturating_sub(16);
            tail.drain(..keep);
        }
    })
    .await;
    assert_eq!(
        finished,
        Ok(true),
        "the flood did not finish: {bytes} bytes read"
    );
    // With output post-processing off, the TTY passes "y\n" through unchanged.
    assert_eq!(
        ys,
        FLOOD / 2,
        "every line of the flood arrives, in {bytes} bytes"
    );
    let peak = rss(app.pid(), "VmHWM");
    eprintln!(
        "flood: {bytes} bytes in {frames} frames, {:?}; gateway RSS {} MiB before, \
         peak {} MiB while stalled, {} MiB in all",
        started.elapsed(),
        before >> 20,
        stalled_peak >> 20,
        peak >> 20
    );
    assert!(
        peak < 256 << 20,
        "the gateway held too much of the flood: peak RSS {} MiB",
        peak >> 20
    );

    // Still answering afterwards: nothing deadlocked.
    t.out.clear();
    t.cursor = 0;
    t.send("echo alive-$((6*7))\r").await;
    t.expect("alive-42").await;
    t.send("exit\r").await;
    assert_eq!(t.exit_code().await, 0);
}

/// A TCP relay between a client and the gateway whose connections can be cut abruptly, as
/// a network failure would: the sockets are reset, no websocket close frame is sent.
struct Relay {
    addr: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let t = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                // A zero linger resets the connection on drop without blocking, which is
                // exactly the network failure this relay imitates.
                #[allow(deprecated)]
                {
                    let _ = client.set_linger(Some(Duration::ZERO));
                    let _ = server.set_linger(Some(Duration::ZERO));
                }
                let h = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                t.lock().unwrap().push(h);
            }
        });
        tasks.lock().unwrap().push(accept);
        Relay { addr, tasks }
    }

    /// Drops every relayed connection at once (RST to both sides).
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn terminal_survives_a_cut_connection_and_replays_what_it_missed() {
    let app = TestApp::spawn_with_config("terminal_grace_s = 5\n").await;
    let c = app.admin().await;
    let id = running_session(&c, "persistent").await;
    let url = c.terminal_url(&id).await;
    let relay = Relay::start(app.addr).await;
    let via_relay = url.replace(&app.addr.to_string(), &relay.addr.to_string());

    // A numbered stream of lines that keeps going while the connection is down.
    let mut first = Term::open(&via_relay, None).await;
    first.resize(120, 40).await;
    first.send("stty -echo; for i in $(seq 1 300); do echo line-$i; sleep 0.01; done; echo done-$((2*3))\r").await;
    first.expect("line-20\r\n").await;
    relay.cut();
    let seen = first.out.clone();
    drop(first);
    // Output goes on while nobody is connected.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Reconnect to the same handle, saying what was shown: the rest is replayed.
    let mut second = Term::open(&format!("{url}&offset={}", seen.len()), None).await;
    let replayed = second.replayed().await;
    assert!(replayed > 0, "output made while disconnected is replayed");
    second.expect("done-6").await;
    // Every line exactly once, in order: nothing lost, nothing shown twice.
    let all = String::from_utf8_lossy(&[seen.clone(), second.out.clone()].concat()).into_owned();
    let lines: Vec<&str> = all
        .split("\r\n")
        .filter_map(|l| l.find("line-").map(|i| &l[i..]))
        .filter(|l| l[5..].bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let want: Vec<String> = (1..=300).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        lines, want,
        "the two connections together show each line once"
    );

    // A second connection to the same handle takes it over (a browser whose network died
    // reconnects before the server has noticed): the first is told so with a Close frame,
    // and the shell goes on in the second.
    let base = seen.len() + second.out.len();
    let mut taker = Term::open(&format!("{url}&offset={base}"), None).await;
    let goodbye = loop {
        match tokio::time::timeout(EXPECT, second.ws.next())
            .await
            .expect("the displaced connection is told in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a code"),
            Some(Ok(_)) => {}
            other => panic!("the displaced connection broke instead of closing: {other:?}"),
        }
    };
    assert_eq!(u16::from(goodbye.code), 4001, "{goodbye:?}");
    assert!(goodbye.reason.contains("another connection"), "{goodbye:?}");
    drop(second);
    taker.replayed().await;
    taker.send("echo still-$((40+2))\r").await;
    taker.expect("still-42").await;

    // Under a live `top`: cut the network again; what top drew meanwhile is replayed.
    let mut offset = (base + taker.out.len()) as u64;
    drop(taker);
    let relay = Relay::start(app.addr).await;
    let via_relay = url.replace(&app.addr.to_string(), &relay.addr.to_string());
    let mut third = Term::open(&format!("{via_relay}&offset={offset}"), None).await;
    third.replayed().await;
    third.send("top -d 0.3\r").await;
    third.expect("load average").await;
    relay.cut();
    offset += third.out.len() as u64;
    drop(third);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut fourth = Term::open(&format!("{url}&offset={offset}"), None).await;
    let replayed = fourth.replayed().await;
    assert!(replayed > 0, "top kept drawing while the network was down");
    assert!(
        String::from_utf8_lossy(&fourth.out).contains("load average"),
        "the replay holds top's screens"
    );
    fourth.send("q").await;
    // top reads its input in chunks and throws away what follows the q: the next command
    // goes once top has ended, not in the same breath.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    fourth.send("echo after-top\r").await;
    fourth.expect("after-top").await;
    drop(fourth);

    // After the grace period with nobody attached, the shell is hung up and the handle refused.
    tokio::time::sleep(Duration::from_secs(7)).await;
    refused_404(&format!("{url}&offset=0"), None).await;
    let container = c.session(&id).await["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, ps) = crate::common::docker(&["exec", &container, "ps", "-eo", "comm"]);
    assert!(
        !ps.lines().any(|l| l.trim() == "bash"),
        "the shell was ended: {ps}"
    );
    crate::common::end_session(&c, &id).await;
}

/// A terminal address with a query string that does not parse is a validation problem
/// (problem+json naming the query), like every other API query, not axum's plain text.
#[tokio::test]
async fn a_bad_terminal_query_is_a_validation_problem() {
    let app = TestApp::spawn().await;
    let c = app.anon();
    let id = uuid::Uuid::new_v4();
    let r = c
        .get(&format!("/api/v1/terminals/{id}?secret=abc&offset=many"))
        .await;
    let p = crate::common::assert_field_error(&r, "query");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("offset")),
        "{p}"
    );
}
