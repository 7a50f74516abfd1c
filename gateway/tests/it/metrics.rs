//! `/metrics`: its bearer token (missing, wrong, right; open without one), the series a real
//! session, app, terminal, tunnel and upload produce, and a real Prometheus (Debian's
//! `prometheus`, installed by `ensure_prometheus` in scripts/lib.sh) scraping a gateway with
//! the token and answering a PromQL query about it.

use crate::common::{
    app_login, assert_problem, run_python, small_session, wait_status, wait_until, Client, TestApp,
    USER_PASSWORD,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "metrics-token-for-tests-0123456789";
const START: Duration = Duration::from_secs(60);

/// A gateway whose `/metrics` asks for [`TOKEN`].
async fn with_token() -> TestApp {
    TestApp::spawn_with_config(&format!("metrics_token = \"{TOKEN}\"\n")).await
}

/// `GET /metrics` with `Authorization: Bearer token` (none when `None`).
async fn scrape_as(app: &TestApp, token: Option<&str>) -> crate::common::Reply {
    let c = app.anon();
    let mut req = c.http.get(c.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    c.send(req).await
}

/// The exposition text, read with the right token.
async fn scrape(app: &TestApp) -> String {
    let r = scrape_as(app, Some(TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The value of one series, written exactly as the exposition writes it
/// (`name{label="v",…}`); `None` when it is not there.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[track_caller]
fn must(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("{series} is not in the metrics:\n{text}"))
}

/// A small HTTP server on port 8000 inside the container.
const HELLO: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *a):
        pass
http.server.HTTPServer.allow_reuse_address = True
http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

/// A websocket to `url` (a terminal's, or a tunnel with the console cookie).
async fn dial(
    url: &str,
    cookie: Option<&str>,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = url.into_client_request().expect("a websocket URL");
    if let Some(c) = cookie {
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(c).unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
        .0
}

/// A user's RUNNING session with port 8000 preopened (as app `port-8000`); its id and
/// container.
async fn running_web_session(c: &Client) -> (String, String) {
    let mut body = small_session("metered");
    body["preopen_ports"] = json!([8000]);
    let s = c.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(c, &id, "RUNNING", START).await;
    (id, s["container_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_metrics_token_is_asked_for_and_checked() {
    let app = with_token().await;
    let missing = scrape_as(&app, None).await;
    let p = assert_problem(&missing, 401, "unauthenticated");
    assert!(p["detail"].as_str().unwrap().contains("token"), "{p}");
    assert!(missing.headers.contains_key("www-authenticate"));
    for wrong in [
        "metrics-token-for-tests-012345678",
        "nonsense",
        &TOKEN.repeat(2),
    ] {
        let r = scrape_as(&app, Some(wrong)).await;
        let p = assert_problem(&r, 401, "unauthenticated");
        assert!(p["detail"].as_str().unwrap().contains("wrong"), "{p}");
    }
    // A user's login is no metrics token.
    let admin = app.admin().await;
    assert_problem(&admin.get("/metrics").await, 401, "unauthenticated");
    let r = scrape_as(&app, Some(TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        r.text().contains("# TYPE berth_sessions gauge"),
        "{}",
        r.text()
    );

    // Without a token configured, /metrics is open like /healthz.
    let open = TestApp::spawn().await;
    let r = scrape_as(&open, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(must(&r.text(), "berth_sessions{status=\"RUNNING\"}"), 0.0);
    assert_eq!(
        must(&r.text(), "berth_node_state{node=\"local\",state=\"UP\"}"),
        1.0
    );
}

#[tokio::test]
async fn a_real_session_app_terminal_tunnel_and_upload_show_in_the_metrics() {
    let app = with_token().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let (id, container) = running_web_session(&alice).await;

    let m = scrape(&app).await;
    assert_eq!(must(&m, "berth_sessions{status=\"RUNNING\"}"), 1.0);
    assert_eq!(must(&m, "berth_sessions{status=\"PENDING\"}"), 0.0);
    assert_eq!(must(&m, "berth_session_launch_duration_seconds_count"), 1.0);
    assert!(must(&m, "berth_session_launch_duration_seconds_sum") > 0.0);
    assert!(must(&m, "berth_scheduler_pass_duration_seconds_count") >= 1.0);
    assert_eq!(must(&m, "berth_scheduler_queue_length"), 0.0);
    let local = "{node=\"local\"}";
    assert_eq!(
        must(&m, &format!("berth_node_cpu_allocated_cores{local}")),
        0.1
    );
    assert_eq!(
        must(&m, &format!("berth_node_memory_allocated_bytes{local}")),
        (128u64 << 20) as f64
    );
    assert!(must(&m, &format!("berth_node_cpu_capacity_cores{local}")) >= 0.1);
    assert!(must(&m, &format!("berth_node_memory_capacity_bytes{local}")) > 0.0);
    assert_eq!(must(&m, &format!("berth_node_sessions{local}")), 1.0);
    assert_eq!(
        must(&m, "berth_node_state{node=\"local\",state=\"DOWN\"}"),
        0.0
    );

    // The app: a login (302), then requests until the server in the container answers.
    run_python(&container, HELLO);
    let (http, host, cookie) = app_login(&app, &alice, &id, "port-8000").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("{}/", app.base))
            .header(reqwest::header::HOST, &host)
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            assert_eq!(r.text().await.unwrap(), "hello");
            break;
        }
        assert!(Instant::now() < deadline, "the app never answered 200");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A terminal, kept open while the metrics are read.
    let mut term = dial(&alice.terminal_url(&id).await, None).await;
    term.send(Message::binary(b"echo metered-$((6*7))\n".to_vec()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !String::from_utf8_lossy(&seen).contains("metered-42") {
            match term.next().await {
                Some(Ok(Message::Binary(b))) => seen.extend_from_slice(&b),
                Some(Ok(_)) => {}
                other => panic!("the terminal ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the terminal echoes");
    // A tunnel to the same port, also kept open.
    let tunnel_url = format!("ws://{}/api/v1/sessions/{id}/tunnel/port-8000", app.addr);
    let tunnel = dial(&tunnel_url, Some(&alice.cookie_header())).await;

    // An upload into a folder.
    let folder = crate::vfolders::folder(&alice, "data").await;
    let data = vec![7u8; 3000];
    let r = crate::vfolders::upload(&alice, &folder, "a.bin", &data).await;
    assert_eq!(r.status, 204, "{}", r.text());

    let m = scrape(&app).await;
    assert_eq!(
        must(&m, "berth_app_requests_total{app=\"port\",status=\"302\"}"),
        1.0
    );
    assert!(must(&m, "berth_app_requests_total{app=\"port\",status=\"200\"}") >= 1.0);
    assert!(must(&m, "berth_app_request_duration_seconds_count{app=\"port\"}") >= 2.0);
    assert_eq!(must(&m, "berth_websockets_open{kind=\"terminal\"}"), 1.0);
    assert_eq!(must(&m, "berth_websockets_open{kind=\"tunnel\"}"), 1.0);
    assert_eq!(must(&m, "berth_websockets_open{kind=\"app\"}"), 0.0);
    let input = "echo metered-$((6*7))\n".len() as f64;
    assert_eq!(
        must(&m, "berth_terminal_bytes_total{direction=\"input\"}"),
        input
    );
    assert!(must(&m, "berth_terminal_bytes_total{direction=\"output\"}") >= seen.len() as f64);
    assert_eq!(must(&m, "berth_upload_bytes_total"), 3000.0);
    assert_eq!(must(&m, "berth_vfolder_bytes{kind=\"user\"}"), 3000.0);
    assert_eq!(must(&m, "berth_vfolders{kind=\"user\"}"), 1.0);
    assert_eq!(must(&m, "berth_vfolders{kind=\"project\"}"), 0.0);
    // HTTP requests by route pattern, never by raw path: no id appears in any label.
    assert!(
        must(
            &m,
            "berth_http_requests_total{method=\"GET\",route=\"/api/v1/sessions/{id}\",status=\"200\"}"
        ) >= 1.0
    );
    assert_eq!(
        must(
            &m,
            "berth_http_requests_total{method=\"POST\",route=\"/api/v1/sessions\",status=\"201\"}"
        ),
        1.0
    );
    assert!(
        must(
            &m,
            "berth_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/sessions/{id}\"}"
        ) >= 1.0
    );
    assert!(!m.contains(&id), "a session id is in a label:\n{m}");
    assert!(!m.contains(&folder), "a folder id is in a label:\n{m}");
    // An unknown path is one label value, whatever the path.
    alice.get("/api/v1/no-such-thing/12345").await;
    let m = scrape(&app).await;
    assert!(!m.contains("12345"), "a raw path is in a label:\n{m}");
    assert!(
        must(
            &m,
            "berth_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ) >= 1.0
    );

    // Closed websockets stop counting once their pumps end.
    drop(term);
    drop(tunnel);
    wait_until("the websockets to count as closed", START, || async {
        let m = scrape(&app).await;
        value(&m, "berth_websockets_open{kind=\"terminal\"}") == Some(0.0)
            && value(&m, "berth_websockets_open{kind=\"tunnel\"}") == Some(0.0)
    })
    .await;
}

/// The Prometheus server of this machine: `prometheus` on PATH or Debian's path; `None`
/// (with a note) only when `BERTH_TEST_NO_PROMETHEUS` says to go without it.
fn prometheus_binary() -> Option<String> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(p.display().to_string()),
        None if std::env::var_os("BERTH_TEST_NO_PROMETHEUS").is_some() => {
            eprintln!("BERTH_TEST_NO_PROMETHEUS is set: the real-Prometheus test does not run");
            None
        }
        None => panic!(
            "the prometheus binary is missing: run `source scripts/lib.sh && ensure_prometheus` \
             (or set BERTH_TEST_NO_PROMETHEUS=1 to go without this test)"
        ),
    }
}

/// A Prometheus server of the test's own, killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `bin` on a free loopback port, scraping `target` every second with the
    /// bearer token.
    async fn start(bin: &str, target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("berth-prom-")
            .tempdir()
            .unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: berth\n    authorization:\n      type: Bearer\n      \
             credentials: {TOKEN}\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        // A free port: taken from the kernel, released, then given to Prometheus.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/-/ready", p.base)).send().await {
                if r.status() == 200 {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not get ready within a minute; its log:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The values of an instant PromQL query (`/api/v1/query`).
    async fn query(&self, promql: &str) -> Vec<f64> {
        let r: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "success", "{promql}: {r}");
        r["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_gateway_with_the_token() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let app = with_token().await;
    let admin = app.admin().await;
    let s = admin.create_session(small_session("scraped")).await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_status(&admin, &id, "RUNNING", START).await;

    let prom = Prometheus::start(&bin, app.addr).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = prom.query("berth_sessions{status=\"RUNNING\"} == 1").await;
        let up = prom.query("up{job=\"berth\"}").await;
        if running == [1.0] && up == [1.0] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw one RUNNING session (query: {running:?}, up: {up:?}); its log:\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The launch histogram answers a quantile, and the node is UP.
    assert_eq!(
        prom.query("berth_node_state{node=\"local\",state=\"UP\"}")
            .await,
        [1.0]
    );
    let p95 = prom
        .query("histogram_quantile(0.95, berth_session_launch_duration_seconds_bucket)")
        .await;
    assert!(p95.len() == 1 && p95[0] > 0.0, "{p95:?}");

    // The alert rules docs/operations.md gives are valid for this Prometheus.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .unwrap();
    let rules = doc
        .split("```yaml\n")
        .find(|b| b.starts_with("groups:"))
        .and_then(|b| b.split("```").next())
        .expect("docs/operations.md has a rules block");
    let file = prom.dir.path().join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let promtool = std::path::Path::new(&bin).with_file_name("promtool");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    assert!(
        out.status.success(),
        "promtool refuses the documented rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
