//! `berth wsproxy`: the proxy beside a node. It holds the terminals, app logins and tunnels
//! of that node's session containers and reaches them straight through the node's engine
//! (execs) and its loopback (published ports), so their bytes never cross the gateway. It has
//! no database: every first use carries a token the gateway signed ([`crate::token`]), bound
//! to this node, one session, its owner and one target.
//!
//! Routes on the proxy's own host:
//! - `GET /terminals/{handle}?token=…[&offset=N]` (websocket): the first connection checks the
//!   token (terminal, this handle) and makes the handle with the token as its secret; later
//!   connections (reconnects within the grace period, with replay) are authorised by that
//!   secret, as the gateway's own terminals are.
//! - `GET /tunnel?token=…` (websocket): one TCP connection to the app's published port; the
//!   token works once.
//! - `POST /__berth/revoke` `{user, at}` and `POST /__berth/activity` (the gateway, with
//!   `Authorization: Bearer KEY`): end what a user holds open (and refuse their tokens issued
//!   before `at`); hand over the sessions' traffic since the last call, for the idle timeout.
//! - `GET /__berth/health`: the node this proxy serves.
//!
//! - `GET /__berth/open?token=…`: spends a signed app token once and redirects the browser to
//!   the app's own origin with the app proxy's one-use login link (subdomain mode
//!   `APP--SESSION.BASE_DOMAIN` on the proxy's port, or port mode's listener), so the gateway
//!   needs to know nothing of how the proxy names app origins.
//!
//! App hosts go to an [`AppProxy`] as in the gateway: `/__berth/auth?token=…` logs the owner
//! in with the host-only app cookie; every later request needs it.

use crate::apps::{AppProxy, AppResolver, AppTarget};
use crate::exec::{ExecEndpoint, ExecTransport};
use crate::revoke::Revocations;
use crate::terminal::{HandleInfo, TerminalConfig, TerminalHub};
use crate::token::{self, Claims, Key, Refusal, Spent, Target};
use api::terminal::MAX_FRAME_BYTES;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard::Docker;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What `berth wsproxy` is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node it serves (tokens for other nodes are refused).
    pub node: String,
    /// The node's engine: `unix:///path` or `tcp://HOST:PORT` (with `tls_dir`).
    pub docker: String,
    /// `ca.pem`, `cert.pem`, `key.pem` for a `tcp://` engine.
    pub tls_dir: Option<PathBuf>,
    pub key: Key,
    /// Where clients reach this proxy (`http://HOST:PORT`); app origins derive from it.
    pub public_url: String,
    /// App hosts are `APP--SESSION.BASE_DOMAIN` on the public URL's port.
    pub base_domain: String,
    /// Port mode instead: a listener per open app.
    pub port_mode: Option<crate::PortMode>,
    pub terminal: TerminalConfig,
}

/// The proxy of one node.
pub struct Remote {
    node: String,
    key: Key,
    public_url: String,
    docker: Docker,
    endpoint: ExecEndpoint,
    hub: Arc<TerminalHub>,
    apps: Arc<AppProxy>,
    known: Arc<Known>,
    revocations: Arc<Revocations>,
    spent: Spent,
    /// User id → the gateway's time (ms) of their latest revocation: tokens issued before it
    /// are refused.
    revoked_at: Mutex<HashMap<String, u64>>,
}

/// Apps the proxy has logged someone into: `(session, app)` → (container, port, owner, when).
type KnownApps = HashMap<(String, String), (String, u16, String, std::time::Instant)>;
/// How long a known app is remembered after its last login (an app login's lifetime).
const KNOWN_FOR: Duration = Duration::from_secs(12 * 3600);

/// What signed app tokens told the proxy, for the app proxy's resolver.
#[derive(Default)]
struct Known {
    apps: Mutex<KnownApps>,
}

struct RemoteApps {
    docker: Docker,
    known: Arc<Known>,
}

#[async_trait::async_trait]
impl AppResolver for RemoteApps {
    async fn resolve(&self, session_id: &str, app: &str) -> Option<AppTarget> {
        let (container, port, owner, _) = self
            .known
            .apps
            .lock()
            .expect("known lock")
            .get(&(session_id.to_string(), app.to_string()))
            .cloned()?;
        let (addr, secret) = published(&self.docker, &container, session_id, port).await?;
        Some(AppTarget {
            owner_id: owner,
            protocol: "http".into(),
            addr,
            secret,
        })
    }
}

/// Where a running session container publishes `port` on this host's loopback, and the
/// secret its apps start with; `None` when it does not run or is not that session's.
async fn published(
    docker: &Docker,
    container: &str,
    session_id: &str,
    port: u16,
) -> Option<(SocketAddr, String)> {
    let info = docker.inspect_container(container, None).await.ok()?;
    if !info.state.as_ref()?.running.unwrap_or(false) {
        return None;
    }
    let config = info.config.as_ref()?;
    let labels = config.labels.as_ref()?;
    if labels.get("berth.session").map(String::as_str) != Some(session_id) {
        return None;
    }
    let secret = config
        .env
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("BERTH_JUPYTER_TOKEN="))
        .unwrap_or_default()
        .to_string();
    let bindings = info
        .network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(&format!("{port}/tcp"))?
        .clone()?;
    let host = bindings
        .into_iter()
        .filter(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
        .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()))?;
    Some((SocketAddr::from(([127, 0, 0, 1], host)), secret))
}

/// Connects to the node's engine, negotiating the API version.
async fn connect(docker: &str, tls_dir: Option<&std::path::Path>) -> anyhow::Result<ExecEndpoint> {
    if let Some(path) = docker.strip_prefix("unix://") {
        let d = Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| anyhow::anyhow!("Cannot reach the Docker engine at {docker}: {e}"))?
            .negotiate_version()
            .await
            .map_err(|e| anyhow::anyhow!("The Docker engine at {docker} does not answer: {e}"))?;
        return Ok(ExecEndpoint {
            docker: d,
            transport: ExecTransport::Unix(path.into()),
        });
    }
    let Some(addr) = docker.strip_prefix("tcp://") else {
        anyhow::bail!("--docker is unix:///path/to/docker.sock or tcp://HOST:PORT, not {docker}");
    };
    let Some(dir) = tls_dir else {
        anyhow::bail!("A tcp:// engine is reached with mutual TLS: give --tls-dir with ca.pem, cert.pem and key.pem");
    };
    let read = |f: &str| {
        std::fs::read(dir.join(f))
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.join(f).display()))
    };
    let transport = ExecTransport::tls(
        addr,
        &read("ca.pem")?,
        &read("cert.pem")?,
        &read("key.pem")?,
    )?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = Docker::connect_with_ssl(
        docker,
        &dir.join("key.pem"),
        &dir.join("cert.pem"),
        &dir.join("ca.pem"),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| anyhow::anyhow!("Cannot set up TLS to the Docker engine at {docker}: {e}"))?
    .negotiate_version()
    .await
    .map_err(|e| anyhow::anyhow!("The Docker engine at {docker} does not answer: {e}"))?;
    Ok(ExecEndpoint {
        docker: d,
        transport,
    })
}

/// A problem+json answer.
fn problem(status: u16, detail: &str) -> Response {
    let kind = match status {
        401 => api::ProblemType::Unauthenticated,
        403 => api::ProblemType::Forbidden,
        404 => api::ProblemType::NotFound,
        409 => api::ProblemType::Conflict,
        _ => api::ProblemType::Validation,
    };
    let mut r = Json(api::Problem::new(kind, detail)).into_response();
    *r.status_mut() = StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

fn refuse(why: Refusal) -> Response {
    problem(why.status(), why.sentence())
}

impl Remote {
    /// Connects to the node's engine and sets up the proxy.
    pub async fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        let endpoint = connect(&config.docker, config.tls_dir.as_deref()).await?;
        let docker = endpoint.docker.clone();
        let known = Arc::new(Known::default());
        let apps = Arc::new(AppProxy::new(
            &config.base_domain,
            config.port_mode,
            Arc::new(RemoteApps {
                docker: docker.clone(),
                known: known.clone(),
            }),
        ));
        Ok(Arc::new(Self {
            node: config.node,
            key: config.key,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            docker,
            endpoint,
            hub: Arc::new(TerminalHub::new(config.terminal)),
            apps,
            known,
            revocations: Arc::new(Revocations::default()),
            spent: Spent::default(),
            revoked_at: Mutex::default(),
        }))
    }

    /// The routes of the proxy.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/terminals/{id}", get(terminal))
            .route("/tunnel", get(tunnel))
            .route("/__berth/open", get(open_app))
            .route("/__berth/revoke", post(revoke))
            .route("/__berth/activity", post(activity))
            .route("/__berth/health", get(health))
            // Before the layer, so that app hosts' paths (which match no route) pass it.
            .fallback(|| async { problem(404, "There is nothing at this address.") })
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                app_hosts,
            ))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown`; then closes every terminal and tunnel.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = crate::listen::Limits {
            header_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        };
        let me = self.clone();
        let shutdown = async move {
            shutdown.await;
            me.revocations.shut_down();
            me.apps.stop_listeners();
            me.hub.close_all().await;
        };
        crate::listen::serve(listener, self.router(), limits, shutdown).await
    }

    /// Checks a token for `target`, and that its owner was not revoked after it was issued.
    fn check(&self, token: &str, target: Target) -> Result<Claims, Refusal> {
        let claims = token::verify(&self.key, token, &self.node, target, token::now_ms())?;
        let revoked = self
            .revoked_at
            .lock()
            .expect("revoked lock")
            .get(&claims.owner)
            .copied();
        if revoked.is_some_and(|at| claims.iat <= at) {
            return Err(Refusal::Revoked);
        }
        Ok(claims)
    }

    /// A watch over the owner's access, for what `claims` opens (read before the revocation
    /// check, as [`Revocations`] requires).
    fn watch(&self, claims: &Claims) -> Result<crate::Watch, Refusal> {
        let since = self.revocations.now();
        let revoked = self
            .revoked_at
            .lock()
            .expect("revoked lock")
            .get(&claims.owner)
            .copied();
        if revoked.is_some_and(|at| claims.iat <= at) {
            return Err(Refusal::Revoked);
        }
        Ok(self.revocations.watch(&claims.owner, since))
    }

    /// Whether the request carries this proxy's key as a bearer secret.
    fn is_gateway(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|k| self.key.matches(k))
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
    offset: Option<u64>,
}

/// The query of a token link; a malformed one (`offset=x`) is a problem+json 400 sentence,
/// never the framework's plain-text rejection.
struct TokenParams(TokenQuery);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TokenParams {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<TokenQuery>::try_from_uri(&parts.uri)
            .map(|Query(q)| TokenParams(q))
            .map_err(|e| {
                problem(
                    400,
                    &format!("The link's query is malformed ({}).", e.body_text()),
                )
            })
    }
}

async fn terminal(
    State(r): State<Arc<Remote>>,
    Path(id): Path<String>,
    TokenParams(q): TokenParams,
    ws: WebSocketUpgrade,
) -> Response {
    let token = q.token.unwrap_or_default();
    if !r.hub.contains(&id) {
        // A first connection: the token makes the handle.
        let claims = match r.check(&token, Target::Terminal) {
            Ok(c) => c,
            Err(why) => return refuse(why),
        };
        if claims.handle.as_deref() != Some(id.as_str()) {
            return refuse(Refusal::WrongTarget);
        }
        if !r.spent.spend(&claims) {
            // Used before: the handle it made has ended.
            return problem(404, "There is no open terminal with that address.");
        }
        let access = match r.watch(&claims) {
            Ok(a) => a,
            Err(why) => return refuse(why),
        };
        let info = HandleInfo {
            session_id: claims.session.clone(),
            owner_id: claims.owner.clone(),
            container_id: claims.container.clone(),
        };
        r.hub.adopt(&id, &token, info, r.endpoint.clone(), access);
    }
    let Some(auth) = r.hub.authorize(&id, &token, None) else {
        return problem(404, "There is no open terminal with that address.");
    };
    let hub = r.hub.clone();
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| hub.serve(auth, socket, q.offset))
}

async fn tunnel(
    State(r): State<Arc<Remote>>,
    TokenParams(q): TokenParams,
    ws: WebSocketUpgrade,
) -> Response {
    let claims = match r.check(q.token.as_deref().unwrap_or_default(), Target::Tunnel) {
        Ok(c) => c,
        Err(why) => return refuse(why),
    };
    let Some(port) = claims.port else {
        return refuse(Refusal::WrongTarget);
    };
    if !r.spent.spend(&claims) {
        return refuse(Refusal::Spent);
    }
    let access = match r.watch(&claims) {
        Ok(a) => a,
        Err(why) => return refuse(why),
    };
    let Some((addr, _)) = published(&r.docker, &claims.container, &claims.session, port).await
    else {
        return problem(
            409,
            "The app's port is not published on this node; is the session still running?",
        );
    };
    let toucher = r.apps.toucher(&claims.session);
    ws.on_upgrade(move |socket| crate::apps::tunnel(socket, addr, access, toucher))
}

/// `POST /__berth/revoke`: a user's access went.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeRequest {
    pub user: String,
    /// The gateway's time of the revocation, ms since the epoch.
    pub at: u64,
}

async fn revoke(
    State(r): State<Arc<Remote>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !r.is_gateway(&headers) {
        return problem(401, "Only the gateway, with this proxy's key, may do this.");
    }
    let Ok(req) = serde_json::from_slice::<RevokeRequest>(&body) else {
        return problem(400, "The body is {\"user\": ID, \"at\": MILLISECONDS}.");
    };
    {
        let mut at = r.revoked_at.lock().expect("revoked lock");
        let e = at.entry(req.user.clone()).or_default();
        *e = (*e).max(req.at);
    }
    r.revocations.revoke(&req.user);
    tracing::info!(user = %req.user, "access revoked: the user's terminals, apps and tunnels end");
    StatusCode::NO_CONTENT.into_response()
}

/// The answer of `POST /__berth/activity`: sessions with traffic since the last call.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ActivityReport {
    /// `(session id, ms since the epoch of its last traffic)`.
    pub sessions: Vec<(String, u64)>,
}

async fn activity(State(r): State<Arc<Remote>>, headers: HeaderMap) -> Response {
    if !r.is_gateway(&headers) {
        return problem(401, "Only the gateway, with this proxy's key, may do this.");
    }
    let mut latest: HashMap<String, SystemTime> = HashMap::new();
    for (s, at) in r
        .hub
        .take_activity()
        .into_iter()
        .chain(r.apps.take_activity())
    {
        let e = latest.entry(s).or_insert(at);
        *e = (*e).max(at);
    }
    let sessions = latest
        .into_iter()
        .map(|(s, at)| {
            let ms = at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            (s, ms)
        })
        .collect();
    Json(ActivityReport { sessions }).into_response()
}

async fn health(State(r): State<Arc<Remote>>) -> Response {
    Json(serde_json::json!({ "node": r.node })).into_response()
}

/// App hosts go to the app proxy (its own one-use logins and app cookies); the rest to the
/// proxy's routes.
async fn app_hosts(State(r): State<Arc<Remote>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if r.apps.parse_host(host).is_some() {
        return r.apps.handle(req, &r.public_url).await;
    }
    next.run(req).await
}

/// `GET /__berth/open?token=…`: spends a signed app token (once) and sends the browser to
/// the app's own origin with the app proxy's one-use login link.
async fn open_app(State(r): State<Arc<Remote>>, TokenParams(q): TokenParams) -> Response {
    let claims = match r.check(q.token.as_deref().unwrap_or_default(), Target::App) {
        Ok(c) => c,
        Err(why) => return refuse(why),
    };
    let (Some(port), Some(app)) = (claims.port, claims.app.clone()) else {
        return refuse(Refusal::WrongTarget);
    };
    if !r.spent.spend(&claims) {
        return refuse(Refusal::Spent);
    }
    let access = match r.watch(&claims) {
        Ok(a) => a,
        Err(why) => return refuse(why),
    };
    {
        let mut known = r.known.apps.lock().expect("known lock");
        let now = std::time::Instant::now();
        if known.len() > 10_000 {
            known.retain(|_, (.., at)| now.duration_since(*at) < KNOWN_FOR);
        }
        known.insert(
            (claims.session.clone(), app.clone()),
            (claims.container.clone(), port, claims.owner.clone(), now),
        );
    }
    match r
        .apps
        .link(&claims.session, &app, access, &r.public_url)
        .await
    {
        Ok(url) => match HeaderValue::from_str(&url) {
            Ok(v) => {
                let mut resp = StatusCode::FOUND.into_response();
                resp.headers_mut().insert(header::LOCATION, v);
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
            Err(_) => problem(400, "The app's address is not valid."),
        },
        Err(sentence) => {
            r.spent.unspend(&claims);
            problem(409, &sentence)
        }
    }
}

/// Gateway side: calls to a node's proxy, authenticated with its key (plain HTTP through
/// hyper; the proxy's URL as registered).
pub mod client {
    use super::{ActivityReport, RevokeRequest};
    use crate::token::Key;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    async fn call(url: &str, key: &Key, path: &str, body: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let client: Client<_, Body> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let req = axum::http::Request::post(format!("{}{path}", url.trim_end_matches('/')))
            .header("authorization", format!("Bearer {}", key.expose()))
            .header("content-type", "application/json")
            .body(Body::from(body))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req)).await??;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            anyhow::bail!("the proxy at {url} answered {status}");
        }
        Ok(bytes.to_vec())
    }

    /// Tells the proxy at `url` that `user`'s access went at `at_ms` (the gateway's clock).
    pub async fn revoke(url: &str, key: &Key, user: &str, at_ms: u64) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&RevokeRequest {
            user: user.into(),
            at: at_ms,
        })?;
        call(url, key, "/__berth/revoke", body).await.map(|_| ())
    }

    /// The sessions with traffic through the proxy at `url` since the last call.
    pub async fn take_activity(url: &str, key: &Key) -> anyhow::Result<Vec<(String, SystemTime)>> {
        let bytes = call(url, key, "/__berth/activity", Vec::new()).await?;
        let report: ActivityReport = serde_json::from_slice(&bytes)?;
        Ok(report
            .sessions
            .into_iter()
            .map(|(s, ms)| (s, UNIX_EPOCH + Duration::from_millis(ms)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's client against a server that wants the key: activity comes back with
    /// its times, a wrong key is an error.
    #[tokio::test]
    async fn the_gateways_calls_carry_the_key() {
        let key = Key::generate();
        let want = key.clone();
        let app = Router::new()
            .route(
                "/__berth/activity",
                post(move |headers: HeaderMap| {
                    let want = want.clone();
                    async move {
                        let ok = headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .is_some_and(|k| want.matches(k));
                        if !ok {
                            return problem(401, "No.");
                        }
                        Json(ActivityReport {
                            sessions: vec![("s1".into(), 1_700_000_000_123)],
                        })
                        .into_response()
                    }
                }),
            )
            .route("/__berth/revoke", post(|| async { StatusCode::NO_CONTENT }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        let got = client::take_activity(&url, &key).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "s1");
        assert_eq!(
            got[0].1,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert!(client::take_activity(&url, &Key::generate()).await.is_err());
        client::revoke(&url, &key, "u1", 5).await.unwrap();
    }

    /// A malformed query on a token link is a problem sentence, not axum's plain text.
    #[tokio::test]
    async fn a_malformed_link_query_is_a_problem_sentence() {
        use tower::ServiceExt;
        let app = Router::new().route(
            "/tunnel",
            get(|TokenParams(q): TokenParams| async move { q.offset.unwrap_or(0).to_string() }),
        );
        let req = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let r = app.clone().oneshot(req("/tunnel?offset=x")).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let p: api::Problem = serde_json::from_slice(&body).unwrap();
        assert!(
            p.detail.starts_with("The link's query is malformed"),
            "{}",
            p.detail
        );
        let r = app.oneshot(req("/tunnel?offset=7&token=a")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
