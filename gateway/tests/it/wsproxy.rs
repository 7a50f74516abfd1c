//! Proxies beside nodes, as another host would see it: a Docker engine in a network namespace
//! of its own (its own address, reached by the gateway over TCP with mutual TLS) and its
//! `berth wsproxy` in that namespace. A terminal (with a reconnect's replay), JupyterLab (a
//! real kernel says 42) and a TCP tunnel through `berth app --bind` all go browser → proxy →
//! container, and almost nothing reaches the gateway (its port) or goes between it and the
//! node's engine while megabytes move (byte counters in the host's firewall). Forged, expired, other-node and replayed tokens, another
//! user's session and a foreign Origin are refused; traffic through the proxy keeps a session
//! from the idle timeout; disabling the owner ends their proxy connections at once.

use crate::common::{
    assert_field_error, docker_ok, sh, wait_status, wait_until, Client, NetnsEngine, TestApp,
    IMAGE, USER_PASSWORD,
};
use crate::tunnel::{berth_run, bulk_echo, interactive, AppCli};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{COOKIE, HOST, ORIGIN};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsproxy::token::{self, Claims, Key, Target};

const NODE: &str = "edge";
const PROXY_PORT: u16 = 8081;

/// `berth wsproxy` inside the node's namespace; killed on drop.
struct Wsproxy {
    child: Child,
    url: String,
}

impl Wsproxy {
    async fn start(engine: &NetnsEngine, key_file: &Path, log: &Path) -> Wsproxy {
        let url = format!("http://{}:{PROXY_PORT}", engine.node_ip);
        let child = engine
            .command(env!("CARGO_BIN_EXE_berth"))
            .args([
                "wsproxy",
                "--node",
                NODE,
                "--docker",
                &engine.url(),
                "--key-file",
                &key_file.to_string_lossy(),
                "--listen",
                &format!("0.0.0.0:{PROXY_PORT}"),
                "--public-url",
                &url,
                "--base-domain",
                "edge.localhost",
            ])
            .env_remove("BERTH_PROXY_KEY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start berth wsproxy");
        let proxy = Wsproxy { child, url };
        let health = format!("{}/__berth/health", proxy.url);
        wait_until(
            "the node's proxy to answer",
            Duration::from_secs(30),
            || {
                let health = health.clone();
                async move {
                    match reqwest::get(&health).await {
                        Ok(r) if r.status() == 200 => {
                            r.json::<Value>().await.is_ok_and(|v| v["node"] == NODE)
                        }
                        _ => false,
                    }
                }
            },
        )
        .await;
        proxy
    }
}

impl Drop for Wsproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Byte counters in the host's firewall: rules with no target only count the packets they
/// match. `rules` are `(chain, match)`; removed on drop.
struct Counters {
    tag: String,
    rules: Vec<(String, String)>,
}

impl Counters {
    fn new(name: &str, rules: &[(&str, String)]) -> Counters {
        let tag = format!("berth-it-{}-{name}", std::process::id());
        let rules: Vec<(String, String)> = rules
            .iter()
            .map(|(chain, m)| (chain.to_string(), format!("{m} -m comment --comment {tag}")))
            .collect();
        for (chain, m) in &rules {
            let (ok, out) = sh(&format!("iptables -w -I {chain} {m}"));
            assert!(ok, "adding a counting rule: {out}");
        }
        Counters { tag, rules }
    }

    /// Bytes counted so far by all the rules.
    fn bytes(&self) -> u64 {
        let tag = format!("{} ", self.tag);
        let mut total = 0;
        for chain in ["INPUT", "OUTPUT"] {
            let (_, out) = sh(&format!("iptables -w -nvxL {chain}"));
            total += out
                .lines()
                .filter(|l| l.contains(&tag))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        total
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        for (chain, m) in &self.rules {
            let _ = sh(&format!("iptables -w -D {chain} {m}"));
        }
    }
}

/// The status and problem detail of a refused websocket handshake.
async fn refused(url: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(url).await {
        Err(WsError::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            let p: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!("not a problem ({e}): {}", String::from_utf8_lossy(&body))
            });
            let detail = p["detail"].as_str().unwrap_or("").to_string();
            assert!(
                detail.starts_with(char::is_uppercase) && detail.ends_with('.'),
                "a sentence: {p}"
            );
            (resp.status().as_u16(), detail)
        }
        Ok(_) => panic!("{url}: the websocket opened"),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// Opens a terminal websocket and types `input`; returns the socket once `needle` came back.
async fn terminal_until(
    url: &str,
    input: &str,
    needle: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("cannot open the terminal {url}: {e}"));
    ws.send(Message::text(
        json!({"type": "resize", "cols": 100, "rows": 30}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::binary(input.as_bytes().to_vec()))
        .await
        .unwrap();
    let mut out = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m {
                out.extend_from_slice(&b);
                if out.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{needle:?} did not come back");
    ws
}

/// Echoes `msg` through a tunnel websocket.
async fn ws_echo(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    msg: &[u8],
) -> Option<Vec<u8>> {
    ws.send(Message::binary(msg.to_vec())).await.ok()?;
    let mut got = Vec::new();
    while got.len() < msg.len() {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) if !b.is_empty() => got.extend_from_slice(&b),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            _ => return None,
        }
    }
    Some(got)
}

async fn post_url(c: &Client, path: &str) -> String {
    c.post(path, &json!({})).await.expect_json(200)["url"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_nodes_own_proxy_serves_its_sessions_and_the_gateway_sees_none_of_their_bytes() {
    let engine = NetnsEngine::start(true, &[IMAGE, "berth/jupyter"]).await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let proxy_url = format!("http://{}:{PROXY_PORT}", engine.node_ip);
    let tls = json!({
        "ca": engine.pem("ca.pem"),
        "cert": engine.pem("client.pem"),
        "key": engine.pem("client-key.pem"),
    });

    // Registering the proxy is an admin's act; a bad URL is a field error, nothing kept.
    let r = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": NODE, "docker": engine.tls_url(), "tls": tls, "proxy_url": "10.0.0.1:80/x"}),
        )
        .await;
    assert_field_error(&r, "proxy_url");
    // The admin's CLI: `berth node add … --proxy-url` prints the key once.
    let admin_home = crate::tunnel::admin_cli_home(&app, "berth-wsproxy-admin-");
    let file = |f: &str| engine.tls_file(f).to_string_lossy().into_owned();
    let (code, out, err) = berth_run(
        admin_home.path(),
        &[
            "node",
            "add",
            NODE,
            "--docker",
            &engine.tls_url(),
            "--tls-ca",
            &file("ca.pem"),
            "--tls-cert",
            &file("client.pem"),
            "--tls-key",
            &file("client-key.pem"),
            "--proxy-url",
            &proxy_url,
        ],
        "",
    );
    assert_eq!(code, 0, "node add: {out}{err}");
    assert!(
        out.contains(&format!("Its proxy is at {proxy_url}")),
        "{out}"
    );
    let key = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no key in {out}"))
        .to_string();
    assert!(
        out.contains(&format!("berth wsproxy --node {NODE}")),
        "{out}"
    );
    let n = admin
        .get(&format!("/api/v1/nodes/{NODE}"))
        .await
        .expect_json(200);
    assert_eq!(n["state"], "UP", "{n}");
    let shown = admin
        .get(&format!("/api/v1/nodes/{NODE}"))
        .await
        .expect_json(200);
    assert_eq!(shown["proxy_url"], proxy_url.as_str());
    assert!(shown.get("proxy_key").is_none(), "shown once: {shown}");
    let list = admin.get("/api/v1/nodes").await.text();
    assert!(!list.contains(&key));

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("proxy.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let proxy = Wsproxy::start(&engine, &key_file, &dir.path().join("wsproxy.log")).await;

    // Everything goes to the proxied node.
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "draining"}))
        .await
        .expect_json(200);
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let alice_id = alice.get("/api/v1/me").await.expect_json(200)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lab = alice
        // (A clean home: the proxied node does not see the folder storage.)
        .create_session(json!({"name": "lab", "image": "berth/jupyter", "resources": {"cpu": "0.5", "mem": "512m"}, "home": "clean"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (tid, container) = crate::common::running_with_ports(&alice, "tun", &[8000]).await;
    assert_eq!(alice.session(&tid).await["node"], NODE);
    docker_ok(&[
        "-H",
        &engine.url(),
        "exec",
        "-d",
        "-u",
        "1000:1000",
        &container,
        "python3",
        "-c",
        &crate::common::tcp_echo(8000),
    ]);

    // (1) A terminal on the node's proxy, and a reconnect that replays what it missed.
    let term = alice.terminal_url(&tid).await;
    assert!(
        term.starts_with(&format!("ws://{}:{PROXY_PORT}/terminals/", engine.node_ip)),
        "{term}"
    );
    let mut ws = terminal_until(&term, "echo edge-$((6*7))\r", "edge-42").await;
    ws.close(None).await.unwrap();
    drop(ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{term}&offset=0"))
        .await
        .expect("the handle takes a reconnect");
    let mut replay = Vec::new();
    let replayed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) => replay.extend_from_slice(&b),
                Message::Text(t) if t.as_str().contains("\"replayed\"") => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(replayed, Ok(true));
    assert!(String::from_utf8_lossy(&replay).contains("edge-42"));
    drop(ws);

    // (2) Attacks on the proxy's tokens.
    let k = Key::new(key.clone());
    let claims = |target: Target| {
        let mut c = Claims::new(NODE, target, &tid, &alice_id, &container);
        c.handle = Some(uuid::Uuid::new_v4().to_string());
        c
    };
    let ws_base = proxy.url.replacen("http", "ws", 1);
    let term_at = |c: &Claims, signed: &str| {
        format!(
            "{ws_base}/terminals/{}?token={signed}",
            c.handle.as_deref().unwrap()
        )
    };
    // A forged signature.
    let fresh = alice.terminal_url(&tid).await;
    // One character of the MAC changed (not the last: its low bits are padding).
    let at = fresh.len() - 10;
    let flipped = if &fresh[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &fresh[..at], &fresh[at + 1..]);
    assert_eq!(refused(&forged).await.0, 401);
    // Expired.
    let mut c = claims(Target::Terminal);
    c.exp = token::now_ms() - 1000;
    let (status, detail) = refused(&term_at(&c, &token::sign(&k, &c))).await;
    assert_eq!(status, 401);
    assert!(detail.contains("expired"), "{detail}");
    // Signed for another node (the key leaked or shared): refused by node.
    let mut c = claims(Target::Terminal);
    c.node = "local".into();
    let (status, detail) = refused(&term_at(&c, &token::sign(&k, &c))).await;
    assert_eq!(status, 403);
    assert!(detail.contains("another node"), "{detail}");
    // Signed by another proxy's key.
    let c = claims(Target::Terminal);
    assert_eq!(
        refused(&term_at(&c, &token::sign(&Key::generate(), &c)))
            .await
            .0,
        401
    );
    // A terminal token for a tunnel.
    let c = claims(Target::Terminal);
    assert_eq!(
        refused(&format!("{ws_base}/tunnel?token={}", token::sign(&k, &c)))
            .await
            .0,
        403
    );
    // Another user's session answers as a missing one at the gateway.
    for path in [
        format!("/api/v1/sessions/{tid}/terminal"),
        format!("/api/v1/sessions/{tid}/tunnel/port-8000"),
        format!("/api/v1/sessions/{lab}/apps/jupyter"),
    ] {
        crate::common::assert_problem(&bob.post(&path, &json!({})).await, 404, "not-found");
    }
    // The gateway's calls need the key.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for auth in [None, Some("Bearer nope"), Some("Bearer ")] {
        let mut r = http.post(format!("{}/__berth/activity", proxy.url));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        assert_eq!(r.send().await.unwrap().status(), 401, "{auth:?}");
    }
    // The handle made from `fresh` is still unmade: the genuine URL works.
    terminal_until(&fresh, "echo fresh-$((6*7))\r", "fresh-42").await;

    // (3) JupyterLab on its own origin under the proxy; the link works once.
    wait_status(&alice, &lab, "RUNNING", Duration::from_secs(120)).await;
    let link = post_url(&alice, &format!("/api/v1/sessions/{lab}/apps/jupyter")).await;
    assert!(
        link.starts_with(&format!("{}/__berth/open?token=", proxy.url)),
        "{link}"
    );
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 401, "a replayed app link");
    let u = reqwest::Url::parse(&login).unwrap();
    let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    assert_eq!(host, format!("jupyter--{lab}.edge.localhost:{PROXY_PORT}"));
    let path = format!("{}?{}", u.path(), u.query().unwrap());
    let open = |path: String, host: String, cookie: Option<String>| {
        let mut r = http.get(format!("{}{path}", proxy.url)).header(HOST, host);
        if let Some(c) = cookie {
            r = r.header(COOKIE, c);
        }
        r.send()
    };
    let r = open(path.clone(), host.clone(), None).await.unwrap();
    assert_eq!(r.status(), 302);
    let cookie = crate::common::set_cookie_pair(&r);
    let again = open(path.clone(), host.clone(), None).await.unwrap();
    assert_eq!(again.status(), 401, "a replayed login");
    assert!(again.headers().get("set-cookie").is_none());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = open("/api/status".into(), host.clone(), Some(cookie.clone()))
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(
            r.status(),
            503,
            "the starting page until JupyterLab answers"
        );
        assert!(Instant::now() < deadline, "JupyterLab never answered");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A write from a foreign origin never reaches the app.
    let r = http
        .post(format!("{}/api/kernels", proxy.url))
        .header(HOST, &host)
        .header(COOKIE, &cookie)
        .header(ORIGIN, "http://evil.example")
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // (4) The tunnel: its URL from the gateway, one use; then `berth app --bind`.
    let tunnel_path = format!("/api/v1/sessions/{tid}/tunnel/port-8000");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = post_url(&alice, &tunnel_path).await;
        assert!(
            url.starts_with(&format!("{ws_base}/tunnel?token=")),
            "{url}"
        );
        let (mut t, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("the tunnel opens");
        if ws_echo(&mut t, b"hello\n").await.as_deref() == Some(b"hello\n") {
            drop(t);
            assert_eq!(refused(&url).await.0, 401, "a tunnel token works once");
            break;
        }
        assert!(Instant::now() < deadline, "the echo server never answered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The gateway's own tunnel endpoint does not carry a proxied node's bytes.
    let mut req = format!("{}{tunnel_path}", app.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", alice.cookie_header().parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 409),
        other => panic!("the gateway's tunnel answered {:?}", other.map(|_| ())),
    }

    let home = tempfile::Builder::new()
        .prefix("berth-wsproxy-home-")
        .tempdir()
        .unwrap();
    let (code, _, err) = berth_run(
        home.path(),
        &["login", &app.base, "--username", "alice"],
        &format!("{USER_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "login: {err}");
    let cli = AppCli::spawn(
        home.path(),
        &["app", "tun", "port-8000", "--bind", "127.0.0.1:0"],
    );
    let line = cli.first_line();
    let addr: SocketAddr = line
        .strip_prefix("Forwarding ")
        .and_then(|r| r.split_once(' '))
        .map(|(a, _)| a.parse().unwrap())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));

    // (5) Megabytes through the proxy; the gateway reads and writes next to nothing.
    // Everything clients send the gateway or get from it (its port), and everything between
    // the gateway and the node's engine; and what clients exchange with the node's proxy.
    let gw_port = app.addr.port();
    let node = &engine.node_ip;
    let gateway_bytes = Counters::new(
        "gateway",
        &[
            ("INPUT", format!("-p tcp --dport {gw_port}")),
            ("INPUT", format!("-p tcp --sport {gw_port}")),
            ("OUTPUT", format!("-p tcp -d {node} --dport 2376")),
            ("INPUT", format!("-p tcp -s {node} --sport 2376")),
        ],
    );
    let proxy_bytes = Counters::new(
        "proxy",
        &[
            ("OUTPUT", format!("-p tcp -d {node} --dport {PROXY_PORT}")),
            ("INPUT", format!("-p tcp -s {node} --sport {PROXY_PORT}")),
        ],
    );
    let mut data = vec![0u8; 16 << 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut data);
    let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let conn = interactive(conn, "edge").await;
    let conn = bulk_echo(conn, Arc::new(data)).await;
    drop(conn);
    let flood = alice.terminal_url(&tid).await;
    terminal_until(
        &flood,
        "head -c 6000000 /dev/urandom | base64 -w 0; echo; echo flood-$((6*7))\r",
        "flood-42",
    )
    .await;
    let said = crate::jupyter::kernel_says(&proxy.url, &host, &cookie, "print(6*7)").await;
    assert_eq!(said.trim(), "42", "a real kernel through the node's proxy");
    let gateway = gateway_bytes.bytes();
    let through = proxy_bytes.bytes();
    drop((gateway_bytes, proxy_bytes));
    assert!(
        through > 2 * (16 << 20),
        "the proxy moved the bytes: {through}"
    );
    assert!(
        gateway < 2 << 20,
        "the gateway exchanged {gateway} bytes while the proxy moved {through}"
    );
    drop(cli);

    // (6) Traffic through the proxy is activity: with a 6 s idle timeout, the session typed
    // into stays, the unused one is ended as idle.
    // Typing starts before the timeout is set, so the last use is always recent.
    let (mut ws, _) = tokio_tungstenite::connect_async(alice.terminal_url(&tid).await)
        .await
        .unwrap();
    for i in 0..26 {
        if i == 6 {
            app.set_policy("alice", json!({"idle_timeout_s": 6})).await;
        }
        ws.send(Message::binary(b"true\r".to_vec())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), ws.next()).await {}
    }
    let ended = wait_status(&alice, &lab, "TERMINATED", Duration::from_secs(30)).await;
    assert!(
        ended["status_reason"]
            .as_str()
            .unwrap_or("")
            .contains("idle"),
        "{ended}"
    );
    assert_eq!(alice.session(&tid).await["status"], "RUNNING");

    // (7) Disabling the owner ends their connections on the proxy and voids their tokens.
    let unused = alice.terminal_url(&tid).await;
    admin
        .patch("/api/v1/users/alice", &json!({"disabled": true}))
        .await
        .expect_json(200);
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return true,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the open terminal ends");
    // The proxy was told (the terminal ended by it): a token issued before is refused.
    let (status, detail) = refused(&unused).await;
    assert_eq!(status, 401, "{detail}");
    assert!(detail.contains("revoked"), "{detail}");
    drop(proxy);
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "UP"}))
        .await
        .expect_json(200);
}
