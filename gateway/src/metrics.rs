//! `/metrics`: the gateway's Prometheus metrics, all defined here ([`Metrics::new`]) and
//! served in the Prometheus text format (0.0.4) by [`router`]. With a token configured
//! (`--metrics-token` / `BERTH_METRICS_TOKEN`), a scrape must send `Authorization: Bearer
//! TOKEN` (compared in constant time); without one, `/metrics` is open like `/healthz`.
//!
//! Two kinds of series:
//! - **recorded as things happen**, through the handles here: launch latency (`preparing`),
//!   scheduler passes and queue (`scheduling`), upload bytes (`vfolders::uploads`), HTTP
//!   requests ([`track_http`], a layer over every console and API route, labelled by the
//!   route's pattern — axum's `MatchedPath` — never by the raw path), and what the embedded
//!   proxy reports through its [`wsproxy::Observer`] seam (app requests, open websockets,
//!   terminal bytes);
//! - **computed at each scrape** from the database and the node registry ([`Metrics::refresh`]):
//!   sessions by status, per-node capacity, allocation and state, folder bytes.
//!
//! Invariant: no label takes a value from an unbounded set (ids, raw paths, user names): routes
//! are patterns, methods and app names are folded into a few known values, nodes are the
//! admin's own list. `docs/operations.md` lists every series.

use crate::error::{AppError, AppResult};
use crate::AppState;
use api::session::SessionStatus;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sha2::{Digest, Sha256};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use wsproxy::observe::{Direction, SocketKind};

/// A gauge of a fractional value (CPU cores, GPUs).
type FGauge = Gauge<f64, AtomicU64>;
/// A labelled histogram; the constructor gives every label set the same buckets.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeStateLabels {
    node: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppStatusLabels {
    app: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: String,
}

/// Buckets of request latencies, in seconds (5 ms … 60 s).
fn request_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// The registry and every metric handle of one gateway; shared through `AppState` and the
/// session lifecycle.
pub struct Metrics {
    registry: Registry,
    /// One scrape at a time: a scrape resets and refills the computed families.
    scrape: tokio::sync::Mutex<()>,
    // Computed at scrape.
    sessions: Family<StatusLabel, Gauge>,
    node_cpu: Family<NodeLabel, FGauge>,
    node_cpu_allocated: Family<NodeLabel, FGauge>,
    node_memory: Family<NodeLabel, Gauge>,
    node_memory_allocated: Family<NodeLabel, Gauge>,
    node_gpus: Family<NodeLabel, FGauge>,
    node_gpus_allocated: Family<NodeLabel, FGauge>,
    node_sessions: Family<NodeLabel, Gauge>,
    node_state: Family<NodeStateLabels, Gauge>,
    vfolder_bytes: Family<KindLabel, Gauge>,
    vfolders: Family<KindLabel, Gauge>,
    // Recorded as things happen.
    launch: Histogram,
    scheduler_pass: Histogram,
    scheduler_queue: Gauge,
    upload_bytes: Counter,
    app_requests: Family<AppStatusLabels, Counter>,
    app_duration: Histograms<AppLabel>,
    websockets: Family<KindLabel, Gauge>,
    terminal_bytes: Family<DirectionLabel, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric berth exports, registered under the `berth_` prefix.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("berth");
        let m = Self {
            registry: Registry::default(),
            scrape: Default::default(),
            sessions: Family::default(),
            node_cpu: Family::default(),
            node_cpu_allocated: Family::default(),
            node_memory: Family::default(),
            node_memory_allocated: Family::default(),
            node_gpus: Family::default(),
            node_gpus_allocated: Family::default(),
            node_sessions: Family::default(),
            node_state: Family::default(),
            vfolder_bytes: Family::default(),
            vfolders: Family::default(),
            launch: Histogram::new([
                0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
            scheduler_pass: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            scheduler_queue: Gauge::default(),
            upload_bytes: Counter::default(),
            app_requests: Family::default(),
            app_duration: Family::new_with_constructor(request_buckets),
            websockets: Family::default(),
            terminal_bytes: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(request_buckets),
        };
        r.register(
            "sessions",
            "Sessions by status (every session berth remembers, ended ones included)",
            m.sessions.clone(),
        );
        r.register_with_unit(
            "session_launch_duration",
            "Time from a session's creation to RUNNING (queueing, image, container start)",
            Unit::Seconds,
            m.launch.clone(),
        );
        r.register_with_unit(
            "scheduler_pass_duration",
            "Duration of scheduling passes over a non-empty queue",
            Unit::Seconds,
            m.scheduler_pass.clone(),
        );
        r.register(
            "scheduler_queue_length",
            "PENDING sessions still waiting after the last scheduling pass (on the leader)",
            m.scheduler_queue.clone(),
        );
        r.register_with_unit(
            "node_cpu_capacity",
            "CPU sessions may use on a node (its engine's size minus the reserve)",
            Unit::Other("cores".into()),
            m.node_cpu.clone(),
        );
        r.register_with_unit(
            "node_cpu_allocated",
            "CPU held by the live sessions on a node",
            Unit::Other("cores".into()),
            m.node_cpu_allocated.clone(),
        );
        r.register_with_unit(
            "node_memory_capacity",
            "Memory sessions may use on a node",
            Unit::Bytes,
            m.node_memory.clone(),
        );
        r.register_with_unit(
            "node_memory_allocated",
            "Memory held by the live sessions on a node",
            Unit::Bytes,
            m.node_memory_allocated.clone(),
        );
        r.register(
            "node_gpus_capacity",
            "GPU devices declared on a node",
            m.node_gpus.clone(),
        );
        r.register(
            "node_gpus_allocated",
            "GPUs held by the live sessions on a node (shares as fractions)",
            m.node_gpus_allocated.clone(),
        );
        r.register(
            "node_sessions",
            "Live sessions (SCHEDULED to TERMINATING) on a node",
            m.node_sessions.clone(),
        );
        r.register(
            "node_state",
            "1 for a node's current state (UP, DRAINING, DOWN), 0 for the others",
            m.node_state.clone(),
        );
        r.register_with_unit(
            "vfolder",
            "Bytes stored in live folders, by folder kind (user or project)",
            Unit::Bytes,
            m.vfolder_bytes.clone(),
        );
        r.register(
            "vfolders",
            "Live folders, by folder kind (user or project)",
            m.vfolders.clone(),
        );
        r.register_with_unit(
            "upload",
            "Bytes received by tus uploads into folders",
            Unit::Bytes,
            m.upload_bytes.clone(),
        );
        r.register(
            "app_requests",
            "Requests to session apps through the app proxy, by app and HTTP status",
            m.app_requests.clone(),
        );
        r.register_with_unit(
            "app_request_duration",
            "Time until an app's answer headers (a websocket's 101), by app",
            Unit::Seconds,
            m.app_duration.clone(),
        );
        r.register(
            "websockets_open",
            "Open websockets by kind (terminal, app, tunnel)",
            m.websockets.clone(),
        );
        r.register_with_unit(
            "terminal",
            "Terminal bytes, by direction (input to the shell, output to the browser)",
            Unit::Bytes,
            m.terminal_bytes.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests to the console and API, by method, route pattern and status",
            m.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time until the answer's headers, by method and route pattern",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        // Series that exist before their first event, so that queries and alerts see 0.
        for kind in SocketKind::ALL {
            let _ = m.websockets.get_or_create(&KindLabel {
                kind: kind.as_str(),
            });
        }
        for d in [Direction::Input, Direction::Output] {
            let _ = m.terminal_bytes.get_or_create(&DirectionLabel {
                direction: d.as_str(),
            });
        }
        Self { registry: r, ..m }
    }

    /// A session became RUNNING; `created_at` is its row's creation time (RFC 3339).
    pub fn session_launched(&self, created_at: &str) {
        if let Some(t) = crate::db::parse_time(created_at) {
            let took = time::OffsetDateTime::now_utc() - t;
            self.launch.observe(took.as_seconds_f64().max(0.0));
        }
    }

    /// A scheduling pass over a non-empty queue took `took`; `waiting` sessions still wait.
    pub fn scheduler_pass(&self, took: Duration, waiting: usize) {
        self.scheduler_pass.observe(took.as_secs_f64());
        self.scheduler_queue.set(waiting as i64);
    }

    /// The queue is empty (a pass found nothing PENDING).
    pub fn scheduler_idle(&self) {
        self.scheduler_queue.set(0);
    }

    /// `bytes` of an upload landed in a folder.
    pub fn uploaded(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    /// Recomputes the series taken from the database and the nodes.
    async fn refresh(&self, state: &AppState) -> AppResult<()> {
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM sessions GROUP BY status")
                .fetch_all(&state.db)
                .await?;
        for st in SessionStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == st.as_str())
                .map_or(0, |(_, n)| *n);
            self.sessions
                .get_or_create(&StatusLabel {
                    status: st.as_str(),
                })
                .set(n);
        }

        let nodes = crate::nodes::routes::views(state).await?;
        for f in [
            &self.node_cpu,
            &self.node_cpu_allocated,
            &self.node_gpus,
            &self.node_gpus_allocated,
        ] {
            f.clear();
        }
        for f in [
            &self.node_memory,
            &self.node_memory_allocated,
            &self.node_sessions,
        ] {
            f.clear();
        }
        self.node_state.clear();
        for n in &nodes {
            let l = NodeLabel {
                node: n.name.clone(),
            };
            let cores = |c: api::Millicores| c.0 as f64 / 1000.0;
            let gpus = |r: &api::Resources| r.gpu as f64 + r.gpu_shares.0 as f64 / 100.0;
            self.node_cpu.get_or_create(&l).set(cores(n.capacity.cpu));
            self.node_cpu_allocated
                .get_or_create(&l)
                .set(cores(n.allocated.cpu));
            self.node_memory
                .get_or_create(&l)
                .set(n.capacity.mem.0 as i64);
            self.node_memory_allocated
                .get_or_create(&l)
                .set(n.allocated.mem.0 as i64);
            self.node_gpus.get_or_create(&l).set(n.capacity.gpu as f64);
            self.node_gpus_allocated
                .get_or_create(&l)
                .set(gpus(&n.allocated));
            self.node_sessions.get_or_create(&l).set(n.sessions as i64);
            for s in [
                api::nodes::NodeState::Up,
                api::nodes::NodeState::Draining,
                api::nodes::NodeState::Down,
            ] {
                self.node_state
                    .get_or_create(&NodeStateLabels {
                        node: n.name.clone(),
                        state: s.as_str(),
                    })
                    .set(i64::from(n.state == s));
            }
        }

        let folders: Vec<(String, String)> =
            sqlx::query_as("SELECT id, kind FROM vfolders WHERE deleted_at IS NULL")
                .fetch_all(&state.db)
                .await?;
        for kind in ["user", "project"] {
            let mut bytes = 0u64;
            let mut count = 0i64;
            for (id, _) in folders.iter().filter(|(_, k)| k == kind) {
                // Remembered for a few seconds, else walked (one walk per folder at a time).
                bytes += crate::vfolders::folder_usage(state, id).await;
                count += 1;
            }
            let l = KindLabel { kind };
            self.vfolder_bytes.get_or_create(&l).set(bytes as i64);
            self.vfolders.get_or_create(&l).set(count);
        }
        Ok(())
    }

    /// The whole exposition, with the computed series brought up to date.
    async fn render(&self, state: &AppState) -> AppResult<String> {
        let _one = self.scrape.lock().await;
        self.refresh(state).await?;
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .map_err(|e| anyhow::anyhow!("cannot encode the metrics: {e}"))?;
        Ok(out)
    }
}

/// The label of an app request: its kind, from a fixed set — `jupyter`, `port` (every
/// preopened port; a user picks those numbers), `other` (another declared app) — and
/// `unknown` for a 404 (no such session or app). An app host is named by whoever sends the
/// request, so the name itself never becomes a label: random names would grow the registry
/// without bound.
fn app_label(app: &str, status: u16) -> String {
    if status == 404 {
        return "unknown".into();
    }
    match app.strip_prefix("port-") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => "port".into(),
        _ if app == "jupyter" => "jupyter".into(),
        _ => "other".into(),
    }
}

impl wsproxy::Observer for Metrics {
    fn app_request(&self, app: &str, status: u16, elapsed: Duration) {
        let app = app_label(app, status);
        self.app_requests
            .get_or_create(&AppStatusLabels {
                app: app.clone(),
                status: status.to_string(),
            })
            .inc();
        self.app_duration
            .get_or_create(&AppLabel { app })
            .observe(elapsed.as_secs_f64());
    }

    fn socket_opened(&self, kind: SocketKind) {
        self.websockets
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
    }

    fn socket_closed(&self, kind: SocketKind) {
        self.websockets
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .dec();
    }

    fn terminal_bytes(&self, direction: Direction, bytes: u64) {
        self.terminal_bytes
            .get_or_create(&DirectionLabel {
                direction: direction.as_str(),
            })
            .inc_by(bytes);
    }
}

/// A method as a label: the standard ones by name, anything else as `OTHER`.
fn method_label(m: &Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts and times every request that reaches a route (or a fallback), labelled by the
/// route's pattern (`/api/v1/sessions/{id}`); requests no route matched (console files,
/// unknown paths) are `unmatched`. Latency is to the answer's headers.
pub async fn track_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let started = Instant::now();
    let r = next.run(req).await;
    let m = &state.metrics;
    m.http_duration
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: r.status().as_u16().to_string(),
        })
        .inc();
    r
}

pub fn router() -> Router<AppState> {
    // Beside `/healthz` and `/readyz`, outside the API (and its OpenAPI document).
    Router::new().route("/metrics", get(scrape))
}

/// Whether `headers` carry `Authorization: Bearer TOKEN`, compared in constant time (over
/// the two SHA-256 digests, so neither length nor content leaks through timing).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("");
    let (a, b): ([u8; 32], [u8; 32]) = (
        Sha256::digest(sent.as_bytes()).into(),
        Sha256::digest(token.as_bytes()).into(),
    );
    !sent.is_empty() && a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        if !bearer_matches(&headers, token) {
            let mut r = AppError::new(
                api::ProblemType::Unauthenticated,
                if headers.contains_key(header::AUTHORIZATION) {
                    "The metrics token is wrong: send the token berth was started with (--metrics-token) as Authorization: Bearer TOKEN."
                } else {
                    "The metrics need a token: send Authorization: Bearer TOKEN with the token berth was started with (--metrics-token)."
                },
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth metrics\""),
            );
            return r;
        }
    }
    match state.metrics.render(&state).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_the_right_bearer_token_matches() {
        let token = "s3cret-token";
        assert!(bearer_matches(&with_auth("Bearer s3cret-token"), token));
        assert!(bearer_matches(&with_auth("bearer  s3cret-token "), token));
        assert!(!bearer_matches(&HeaderMap::new(), token));
        assert!(!bearer_matches(&with_auth("Bearer s3cret-toke"), token));
        assert!(!bearer_matches(&with_auth("Bearer "), token));
        assert!(!bearer_matches(&with_auth("Basic s3cret-token"), token));
        assert!(!bearer_matches(&with_auth("s3cret-token"), token));
    }

    #[test]
    fn labels_never_take_user_chosen_values() {
        assert_eq!(app_label("port-8080", 200), "port");
        assert_eq!(app_label("port-9", 302), "port");
        assert_eq!(app_label("jupyter", 200), "jupyter");
        assert_eq!(app_label("port-", 200), "other");
        assert_eq!(app_label("tensorboard", 502), "other");
        // A Host header naming any app of any session: one label, however many names.
        assert_eq!(app_label("x7f3k", 404), "unknown");
        assert_eq!(app_label("jupyter", 404), "unknown");
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }

    /// The names `# TYPE` lines give, once every family has a series.
    fn exported_names() -> std::collections::BTreeSet<String> {
        use wsproxy::Observer;
        let m = Metrics::new();
        m.app_request("lab", 200, Duration::from_millis(1));
        m.sessions
            .get_or_create(&StatusLabel { status: "RUNNING" })
            .set(0);
        for f in [
            &m.node_cpu,
            &m.node_cpu_allocated,
            &m.node_gpus,
            &m.node_gpus_allocated,
        ] {
            f.get_or_create(&NodeLabel { node: "n".into() }).set(0.0);
        }
        for f in [&m.node_memory, &m.node_memory_allocated, &m.node_sessions] {
            f.get_or_create(&NodeLabel { node: "n".into() }).set(0);
        }
        m.node_state
            .get_or_create(&NodeStateLabels {
                node: "n".into(),
                state: "UP",
            })
            .set(1);
        for f in [&m.vfolder_bytes, &m.vfolders] {
            f.get_or_create(&KindLabel { kind: "user" }).set(0);
        }
        m.http_requests
            .get_or_create(&HttpLabels {
                method: "GET",
                route: "/".into(),
                status: "200".into(),
            })
            .inc();
        m.http_duration
            .get_or_create(&RouteLabels {
                method: "GET",
                route: "/".into(),
            })
            .observe(0.1);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
        out.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn docs_operations_lists_every_metric() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
        )
        .unwrap();
        let documented: std::collections::BTreeSet<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `berth_"))
            .map(|l| format!("berth_{}", l.split('`').next().unwrap()))
            .collect();
        assert_eq!(
            exported_names(),
            documented,
            "docs/operations.md's table must list exactly the metrics berth exports"
        );
    }

    #[test]
    fn every_metric_is_named_with_the_prefix_and_its_unit() {
        let m = Metrics::new();
        use wsproxy::Observer;
        m.app_request("port-8888", 200, Duration::from_millis(3));
        m.terminal_bytes(Direction::Output, 5);
        m.session_launched("2020-01-01T00:00:00Z");
        m.uploaded(7);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
        for line in out.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(name.starts_with("berth_"), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
        }
        for want in [
            "berth_app_requests_total{app=\"port\",status=\"200\"} 1",
            "berth_terminal_bytes_total{direction=\"output\"} 5",
            "berth_terminal_bytes_total{direction=\"input\"} 0",
            "berth_upload_bytes_total 7",
            "berth_session_launch_duration_seconds_count 1",
            "berth_websockets_open{kind=\"tunnel\"} 0",
        ] {
            assert!(out.contains(want), "{want} missing from:\n{out}");
        }
    }
}
