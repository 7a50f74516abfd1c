//! The app proxy: HTTP apps (JupyterLab, a preopened port) served on origins of their own,
//! `APP--SESSIONID.BASE_DOMAIN`, never on the console's.
//!
//! Flow of one app visit:
//! 1. The gateway checks the session's owner and calls [`AppProxy::link`], which issues a
//!    one-use token ([`AppProxy::issue`]), valid for a minute, bound to that session and app.
//! 2. The browser opens `SCHEME://APP--ID.BASE/__berth/auth?token=…&next=/` (the scheme of
//!    the gateway's public URL); the proxy takes
//!    the token (once), sets an HttpOnly cookie for that host only, and redirects.
//! 3. Every later request and websocket upgrade on that host needs the cookie; without it the
//!    answer is 401 and nothing reaches the container. The login carries the owner's access
//!    as the gateway checked it ([`Watch`]): once that is revoked the cookie opens nothing
//!    and the app's websockets are cut.
//! 4. A state-changing request (any method but GET, HEAD, OPTIONS) or an upgrade whose
//!    `Origin` is present and is not the app's own origin is refused with 403 before it
//!    reaches the container: a page on another origin (another user's app, any site) cannot
//!    drive this app with the owner's cookie. The app's own origin is derived from the
//!    gateway's public URL and the app's name and session (or its port-mode listener), never
//!    from the request's `Host`.
//! 5. The request is forwarded to the port published on the node's loopback, with hop-by-hop
//!    headers, berth's own cookies and credentials removed and the app's secret
//!    (`Authorization: token …`) added. Websocket upgrades are spliced byte for byte;
//!    keep-alive is pooled. The answer loses its hop-by-hop headers and every `Set-Cookie`
//!    for a cookie named `berth_…` (berth's own names), so an app cannot set berth's cookies.
//! 6. An app not listening yet gets a small "starting…" page that retries, never a bare 502.
//!
//! Timeouts: connecting to the app 5 s (then the starting page), response headers 120 s,
//! bodies and websockets are not cut while they move.

use crate::revoke::Watch;
use axum::body::Body;
use axum::http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri,
};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie that carries an app login, on the app's host only.
pub const APP_COOKIE: &str = "berth_app";
const TOKEN_TTL: Duration = Duration::from_secs(60);
const COOKIE_TTL: Duration = Duration::from_secs(12 * 3600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a resolved app target is reused without asking the resolver again.
const TARGET_TTL: Duration = Duration::from_secs(2);
/// Cookie names berth reserves (`berth_session`, `berth_app`, port mode's `berth_app_PORT`,
/// any later one): never forwarded to an app, never set by one.
const BERTH_COOKIE_PREFIX: &str = "berth_";
/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the common `Proxy-Connection`): they describe one
/// connection and are never forwarded, in either direction. Headers named in `Connection` too.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
];

/// Where an app of a running session is, and who may use it.
#[derive(Debug, Clone)]
pub struct AppTarget {
    pub owner_id: String,
    pub protocol: String,
    pub addr: SocketAddr,
    /// Sent to the app as `Authorization: token …` (JupyterLab's token).
    pub secret: String,
}

/// Looks up apps of running sessions (the gateway answers from its database).
#[async_trait::async_trait]
pub trait AppResolver: Send + Sync {
    async fn resolve(&self, session_id: &str, app: &str) -> Option<AppTarget>;
}

#[derive(Debug, Clone)]
struct Grant {
    session_id: String,
    app: String,
    owner_id: String,
    expires: Instant,
    /// The owner's access as checked when the link was made; revoked, the grant is void.
    access: Watch,
}

/// Port mode: each open app gets a listener of its own, for sites without wildcard DNS.
#[derive(Debug, Clone, Copy)]
pub struct PortMode {
    /// The address the app listeners bind (the gateway's listen address).
    pub ip: std::net::IpAddr,
    /// The ports to use, inclusive; `None` lets the system pick free ones.
    pub range: Option<(u16, u16)>,
    /// The header timeout and connection cap of each app listener, as on the console's port.
    pub limits: crate::listen::Limits,
}

/// A port-mode listener: its port and the task serving it.
type Listener = (u16, tokio::task::JoinHandle<()>);

pub struct AppProxy {
    base_domain: String,
    port_mode: Option<PortMode>,
    /// Port mode: the listener of each open `(session, app)`.
    listeners: Mutex<HashMap<(String, String), Listener>>,
    resolver: Arc<dyn AppResolver>,
    /// Recently resolved targets, so a busy app costs no database read per request;
    /// dropped when the session ends ([`AppProxy::forget_session`]) or after [`TARGET_TTL`].
    targets: Mutex<HashMap<(String, String), (AppTarget, Instant)>>,
    /// One-use tokens by hash.
    tokens: Mutex<HashMap<[u8; 32], Grant>>,
    /// App logins (cookie values) by hash.
    logins: Mutex<HashMap<[u8; 32], Grant>>,
    client: Client<HttpConnector, Body>,
}

fn hash(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn page(status: StatusCode, title: &str, body: &str, refresh: bool) -> Response<Body> {
    let meta = if refresh {
        "<meta http-equiv=\"refresh\" content=\"2\">"
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><meta charset=utf-8>{meta}<title>{title}</title>\
         <body style=\"font-family:system-ui,sans-serif;margin:15vh auto;max-width:34em;color:#0f172a\">\
         <h1 style=\"font-size:20px\">{title}</h1><p>{body}</p></body>"
    );
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if refresh {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    r
}

/// The value of cookie `name` in a request's `Cookie` headers (the gateway uses it too).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Every value of cookie `name` in a request's `Cookie` headers, in the order sent.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The Cookie header without berth's own cookies.
fn strip_berth_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty())
        .filter(|kv| !is_berth_cookie(kv.split('=').next().unwrap_or("")))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// Whether a cookie name is one of berth's (`berth_…`, in any case, with or without the
/// `__Host-`/`__Secure-` prefixes browsers give meaning to).
fn is_berth_cookie(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    let name = name
        .strip_prefix("__host-")
        .or_else(|| name.strip_prefix("__secure-"))
        .unwrap_or(&name);
    name.starts_with(BERTH_COOKIE_PREFIX)
}

/// Whether a `Set-Cookie` value would set one of berth's cookies. Read as a browser reads it:
/// a pair without `=` is a nameless cookie, and a nameless cookie is sent back as its bare
/// value, so `=berth_session=x` would reach the console as `berth_session=x`. A value that is
/// not text counts as one (it is dropped).
fn sets_berth_cookie(value: &HeaderValue) -> bool {
    let Ok(v) = value.to_str() else {
        return true;
    };
    let pair = v.split(';').next().unwrap_or("");
    let sent = match pair.split_once('=') {
        Some((name, value)) if name.trim().is_empty() => value,
        Some(_) => pair,
        None => pair,
    };
    is_berth_cookie(sent.split('=').next().unwrap_or(""))
}

/// Removes hop-by-hop headers and the headers `Connection` names. With `upgrade`, the request
/// or 101 answer keeps what performs the upgrade itself: `Connection: upgrade` and `Upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        // The target's Host is never "hop-by-hop", whatever a client claims.
        .filter(|n| *n != header::HOST)
        .collect();
    let kept_upgrade = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(n);
    }
    if let Some(u) = kept_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, u);
    }
}

/// An app's answer as it may reach the browser: no hop-by-hop headers, no `Set-Cookie` for
/// berth's cookie names (other cookies pass).
fn clean_response_headers(headers: &mut HeaderMap, upgrade: bool) {
    strip_hop_by_hop(headers, upgrade);
    if headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(sets_berth_cookie)
    {
        let kept: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| !sets_berth_cookie(v))
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for v in kept {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// Whether a request changes state or takes over the connection, so that its `Origin` must
/// be the app's own: any method but GET, HEAD and OPTIONS, and every upgrade (websockets are
/// GETs that browsers send across origins without CORS).
fn needs_own_origin(method: &Method, headers: &HeaderMap) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers.contains_key(header::UPGRADE)
}

/// Whether a request carries an `Origin` other than `own` (any of them, if several).
fn foreign_origin(headers: &HeaderMap, own: &str) -> bool {
    headers
        .get_all(header::ORIGIN)
        .iter()
        .any(|o| !o.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(own)))
}

/// The raw (still percent-encoded) value of query parameter `name`.
fn raw_query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Percent-decodes `v` (no `+` for space: berth's links never encode one so); `None` when the
/// result is not UTF-8.
fn percent_decode(v: &str) -> Option<String> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    percent_decode(raw_query_param(uri, name)?)
}

/// Whether the login link's `next` is a path on the app's own origin: one leading `/` (`//`
/// is another host), then only visible ASCII without `\` (browsers read `/\` as `//`) — so no
/// scheme, no whitespace or control characters (browsers drop tabs and newlines from URLs:
/// `/\t/evil` would become `//evil`), nothing outside ASCII.
fn safe_next(next: &str) -> bool {
    let b = next.as_bytes();
    b.first() == Some(&b'/')
        && b.get(1) != Some(&b'/')
        && b.iter().all(|c| (0x21..=0x7e).contains(c) && *c != b'\\')
}

/// Scheme, host and port of a URL like the gateway's public URL (`http://host:port/…`).
fn url_parts(url: &str) -> (String, String, Option<u16>) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, p.parse().ok())
        }
        _ => (authority, None),
    };
    (scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port)
}

/// An origin as browsers serialise it: lowercase, without the scheme's default port.
fn origin(scheme: &str, host: &str, port: Option<u16>) -> String {
    let default = if scheme == "https" { 443 } else { 80 };
    match port {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    }
}

impl AppProxy {
    pub fn new(
        base_domain: &str,
        port_mode: Option<PortMode>,
        resolver: Arc<dyn AppResolver>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self {
            base_domain: base_domain.trim_matches('.').to_ascii_lowercase(),
            port_mode,
            listeners: Mutex::default(),
            resolver,
            targets: Mutex::default(),
            tokens: Mutex::default(),
            logins: Mutex::default(),
            client,
        }
    }

    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    /// `(app, session id)` when `host` (with or without port) is an app host.
    pub fn parse_host(&self, host: &str) -> Option<(String, String)> {
        let name = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let name = name.to_ascii_lowercase();
        let label = name.strip_suffix(&format!(".{}", self.base_domain))?;
        let (app, session) = label.split_once("--")?;
        let app_ok = !app.is_empty()
            && app.len() <= 20
            && app
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !app_ok || uuid::Uuid::parse_str(session).is_err() {
            return None;
        }
        Some((app.to_string(), session.to_string()))
    }

    /// Where the owner opens `app` of `session_id`: a one-use link on the app's own origin
    /// (see `app_origin`).
    ///
    /// # Errors
    /// Port mode with no free port left: a sentence for people.
    pub async fn link(
        self: &Arc<Self>,
        session_id: &str,
        app: &str,
        access: Watch,
        public_url: &str,
    ) -> Result<String, String> {
        let port = match self.port_mode {
            Some(mode) => Some(self.listener(mode, session_id, app, public_url).await?),
            None => None,
        };
        let origin = self.app_origin(public_url, app, session_id, port);
        let token = self.issue(session_id, app, access);
        Ok(format!("{origin}/__berth/auth?token={token}&next=/"))
    }

    /// The origin an app is served on, from the console's `public_url` (the gateway's
    /// configuration, never a request's `Host`): subdomain mode
    /// `SCHEME://APP--SESSION.BASE_DOMAIN[:the public URL's port]`, port mode
    /// `SCHEME://PUBLIC_HOST:LISTENER_PORT`. Serialised as browsers send `Origin`.
    fn app_origin(
        &self,
        public_url: &str,
        app: &str,
        session_id: &str,
        listener_port: Option<u16>,
    ) -> String {
        let (scheme, host, port) = url_parts(public_url);
        match listener_port {
            Some(p) => origin(&scheme, &host, Some(p)),
            None => origin(
                &scheme,
                &format!("{app}--{session_id}.{}", self.base_domain),
                port,
            ),
        }
    }

    /// Port mode: the port of the listener for `(session, app)`, opened on first use.
    async fn listener(
        self: &Arc<Self>,
        mode: PortMode,
        session_id: &str,
        app: &str,
        public_url: &str,
    ) -> Result<u16, String> {
        let key = (session_id.to_string(), app.to_string());
        if let Some((port, _)) = self.listeners.lock().expect("listener lock").get(&key) {
            return Ok(*port);
        }
        let used: Vec<u16> = self
            .listeners
            .lock()
            .expect("listener lock")
            .values()
            .map(|(p, _)| *p)
            .collect();
        let candidates: Vec<u16> = match mode.range {
            Some((a, b)) => (a..=b).filter(|p| !used.contains(p)).collect(),
            None => vec![0],
        };
        let mut bound = None;
        for p in candidates {
            if let Ok(l) = tokio::net::TcpListener::bind((mode.ip, p)).await {
                bound = Some(l);
                break;
            }
        }
        let listener = bound.ok_or_else(|| {
            "No app port is free; close other apps' sessions or widen the app port range."
                .to_string()
        })?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let me = self.clone();
        let cookie_name = format!("{APP_COOKIE}_{port}");
        let (s, a) = key.clone();
        let own = self.app_origin(public_url, app, session_id, Some(port));
        let service = axum::Router::new().fallback(move |req: Request<Body>| {
            let me = me.clone();
            let (s, a, c, o) = (s.clone(), a.clone(), cookie_name.clone(), own.clone());
            async move { me.serve(req, &a, &s, &c, &o).await }
        });
        // Bounded like the console's port: a header timeout and a connection cap per listener.
        let task = tokio::spawn(async move {
            let _ =
                crate::listen::serve(listener, service, mode.limits, std::future::pending()).await;
        });
        let mut listeners = self.listeners.lock().expect("listener lock");
        if let Some((existing, _)) = listeners.get(&key) {
            // Another request opened it meanwhile; keep that one.
            task.abort();
            return Ok(*existing);
        }
        listeners.insert(key, (port, task));
        Ok(port)
    }

    /// The target of `(session, app)`, from the cache while it is fresh.
    async fn target(&self, session_id: &str, app: &str) -> Option<AppTarget> {
        let key = (session_id.to_string(), app.to_string());
        let now = Instant::now();
        if let Some((t, at)) = self.targets.lock().expect("target lock").get(&key) {
            if now.duration_since(*at) < TARGET_TTL {
                return Some(t.clone());
            }
        }
        let t = self.resolver.resolve(session_id, app).await;
        let mut cache = self.targets.lock().expect("target lock");
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| now.duration_since(*at) < TARGET_TTL);
        }
        match &t {
            Some(t) => cache.insert(key, (t.clone(), now)),
            None => cache.remove(&key),
        };
        t
    }

    /// Closes the port-mode listeners of a session that ended and forgets its targets.
    pub fn forget_session(&self, session_id: &str) {
        self.targets
            .lock()
            .expect("target lock")
            .retain(|(s, _), _| s != session_id);
        self.listeners
            .lock()
            .expect("listener lock")
            .retain(|(s, _), (_, task)| {
                let keep = s != session_id;
                if !keep {
                    task.abort();
                }
                keep
            });
    }

    /// A one-use token that logs the owner (whose access `access` watches) into one app of
    /// one session.
    pub fn issue(&self, session_id: &str, app: &str, access: Watch) -> String {
        let token = secret();
        let mut tokens = self.tokens.lock().expect("token lock");
        let now = Instant::now();
        tokens.retain(|_, g| g.expires > now);
        tokens.insert(
            hash(&token),
            Grant {
                session_id: session_id.into(),
                app: app.into(),
                owner_id: access.user_id().into(),
                expires: now + TOKEN_TTL,
                access,
            },
        );
        token
    }

    /// Handles a request whose host is an app host; `public_url` is the console's (the
    /// app's origin is derived from it).
    pub async fn handle(&self, req: Request<Body>, public_url: &str) -> Response<Body> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some((app, session_id)) = self.parse_host(&host) else {
            return page(
                StatusCode::NOT_FOUND,
                "No such app",
                "This address names no app.",
                false,
            );
        };
        let own = self.app_origin(public_url, &app, &session_id, None);
        self.serve(req, &app, &session_id, APP_COOKIE, &own).await
    }

    /// Serves one request for `app` of `session_id`, whose origin is `own`; `cookie_name`
    /// carries the app login.
    async fn serve(
        &self,
        mut req: Request<Body>,
        app: &str,
        session_id: &str,
        cookie_name: &str,
        own: &str,
    ) -> Response<Body> {
        let (app, session_id) = (app.to_string(), session_id.to_string());
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        // Writes and upgrades from another origin never reach the app (a page elsewhere cannot
        // act with the owner's cookie). Without `Origin` (not a browser's cross-origin
        // request) the cookie alone decides; `Origin: null` is foreign.
        if needs_own_origin(req.method(), req.headers()) && foreign_origin(req.headers(), own) {
            return page(
                StatusCode::FORBIDDEN,
                "Refused: another site's page",
                "This request came from a page on another origin and was refused: an app takes changes and websockets only from its own pages.",
                false,
            );
        }
        if req.uri().path() == "/__berth/auth" {
            return self.login(&req, &app, &session_id, cookie_name);
        }
        // Every cookie of that name counts: a page elsewhere may have added one of its own
        // (a parent-domain cookie) beside the owner's.
        let grant = {
            let logins = self.logins.lock().expect("login lock");
            let now = Instant::now();
            cookies(req.headers(), cookie_name).find_map(|c| {
                logins
                    .get(&hash(c))
                    .filter(|g| {
                        g.expires > now
                            && !g.access.is_revoked()
                            && g.session_id == session_id
                            && g.app == app
                    })
                    .cloned()
            })
        };
        let Some(grant) = grant else {
            return page(
                StatusCode::UNAUTHORIZED,
                "Open this app from berth",
                "You are not logged in to this app. Open it from the session page of the berth console.",
                false,
            );
        };
        let Some(target) = self
            .target(&session_id, &app)
            .await
            .filter(|t| t.owner_id == grant.owner_id)
        else {
            return page(
                StatusCode::NOT_FOUND,
                "This app is not available",
                "The session is not running, or it has no such app.",
                false,
            );
        };
        // Forward: berth's credentials out, the app's secret in.
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let headers = req.headers_mut();
        let upgrade = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        strip_hop_by_hop(headers, upgrade);
        strip_berth_cookies(headers);
        headers.remove(header::AUTHORIZATION);
        if let Ok(v) = HeaderValue::from_str(&format!("token {}", target.secret)) {
            headers.insert(header::AUTHORIZATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&host) {
            headers.insert("x-forwarded-host", v);
        }
        let proto = if own.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
        let uri: Uri = match format!("http://{}{path}", target.addr).parse() {
            Ok(u) => u,
            Err(_) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Bad address",
                    "The request path is not valid.",
                    false,
                )
            }
        };
        *req.uri_mut() = uri;
        if upgrade {
            return self.upgrade(req, target.addr, grant.access).await;
        }
        match tokio::time::timeout(HEADER_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(mut resp)) => {
                clean_response_headers(resp.headers_mut(), false);
                resp.map(Body::new)
            }
            // Refused, or accepted by Docker's port forwarder and dropped because nothing
            // listens in the container yet: either way the app is not up yet.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "app proxy: no answer from the app");
                starting(&app)
            }
            Err(_) => page(
                StatusCode::GATEWAY_TIMEOUT,
                "The app is not answering",
                "The app took longer than two minutes to answer.",
                false,
            ),
        }
    }

    fn login(
        &self,
        req: &Request<Body>,
        app: &str,
        session_id: &str,
        cookie_name: &str,
    ) -> Response<Body> {
        // Checked before the token is spent: a bad link refuses and leaves it usable.
        let next = match raw_query_param(req.uri(), "next") {
            None => "/".to_string(),
            Some(raw) => match percent_decode(raw).filter(|n| safe_next(n)) {
                Some(n) => n,
                None => {
                    return page(
                        StatusCode::BAD_REQUEST,
                        "This link is not valid",
                        "The link's next address must be a path on this app's own site, starting with a single /.",
                        false,
                    )
                }
            },
        };
        let token = query_param(req.uri(), "token").unwrap_or_default();
        let grant = self
            .tokens
            .lock()
            .expect("token lock")
            .remove(&hash(&token));
        let Some(grant) = grant.filter(|g| {
            g.expires > Instant::now()
                && g.app == app
                && g.session_id == session_id
                && !g.access.is_revoked()
        }) else {
            return page(
                StatusCode::UNAUTHORIZED,
                "This link has expired",
                "App links work once and for one minute. Open the app again from the berth console.",
                false,
            );
        };
        let login = secret();
        let mut logins = self.logins.lock().expect("login lock");
        let now = Instant::now();
        // Expired and revoked logins are dropped here, not on the hot path of every request.
        logins.retain(|_, g| g.expires > now && !g.access.is_revoked());
        logins.insert(
            hash(&login),
            Grant {
                expires: Instant::now() + COOKIE_TTL,
                ..grant
            },
        );
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FOUND;
        if let Ok(v) = HeaderValue::from_str(&next) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        let c = format!(
            "{cookie_name}={login}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
            COOKIE_TTL.as_secs()
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }

    /// A websocket (or other) upgrade: handshake with the app, then splice the two sockets.
    async fn upgrade(
        &self,
        mut req: Request<Body>,
        addr: SocketAddr,
        access: Watch,
    ) -> Response<Body> {
        let client_side = hyper::upgrade::on(&mut req);
        // A bare connection writes the target as given: use the origin form (`/path?q`).
        if let Some(pq) = req.uri().path_and_query().cloned() {
            if let Ok(u) = Uri::builder().path_and_query(pq).build() {
                *req.uri_mut() = u;
            }
        }
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
            {
                Ok(Ok(s)) => s,
                _ => return starting("the app"),
            };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            return page(
                StatusCode::BAD_GATEWAY,
                "The app broke the connection",
                "The app refused the connection.",
                false,
            );
        };
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(_) => {
                return page(
                    StatusCode::BAD_GATEWAY,
                    "The app broke the connection",
                    "The app closed the connection during the upgrade.",
                    false,
                )
            }
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            clean_response_headers(resp.headers_mut(), false);
            return resp.map(Body::new);
        }
        let upstream = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(c), Ok(u)) = (client_side.await, upstream.await) else {
                return;
            };
            // Spliced until either side ends or the owner's access is revoked.
            let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut c, &mut u) => {}
                _ = access.revoked() => {}
            }
        });
        let mut out = Response::new(Body::empty());
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = resp.headers().clone();
        clean_response_headers(out.headers_mut(), true);
        out
    }
}

fn starting(app: &str) -> Response<Body> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Starting…",
        &format!("{app} is not answering yet; this page retries by itself every two seconds."),
        true,
    )
}

/// Splices a websocket and a TCP connection to `addr` (a TCP app tunnel) until both ends
/// are done. Binary frames carry bytes; an **empty binary frame** is the end of one
/// direction (a half-close), so a client can shut its side and still read the reply. The
/// proxy sends Close once both directions have ended; a Close from the client ends it all.
/// When the owner's `access` is revoked both connections are cut at once.
pub async fn tunnel(socket: axum::extract::ws::WebSocket, addr: SocketAddr, access: Watch) {
    use axum::extract::ws::Message;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// The client's side: still sending, sent its EOF, or closed the websocket.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Client {
        Open,
        Eof,
        Closed,
    }
    let Ok(Ok(stream)) =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
    else {
        let mut socket = socket;
        let _ = socket
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: 1011,
                reason: "the app is not listening".into(),
            })))
            .await;
        return;
    };
    let _ = stream.set_nodelay(true);
    let (mut tcp_rx, mut tcp_tx) = stream.into_split();
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (state_tx, mut state_rx) = tokio::sync::watch::channel(Client::Open);

    // App → client. Owns the websocket's sending half, so it also sends the final Close.
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut app_eof = false;
        loop {
            tokio::select! {
                r = tcp_rx.read(&mut buf), if !app_eof => match r {
                    Ok(0) | Err(_) => {
                        app_eof = true;
                        if ws_tx.send(Message::Binary(Vec::new().into())).await.is_err() {
                            return;
                        }
                    }
                    Ok(n) => {
                        if ws_tx.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                            return;
                        }
                    }
                },
                changed = state_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let client = *state_rx.borrow();
            match client {
                // The reply to the client's Close is queued; flushing sends it.
                Client::Closed => {
                    let _ = ws_tx.flush().await;
                    return;
                }
                Client::Eof if app_eof => {
                    let _ = ws_tx.send(Message::Close(None)).await;
                    return;
                }
                _ => {}
            }
        }
    });

    // Client → app: bytes, the client's EOF (empty frame), or its Close.
    let down = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            match msg {
                Message::Binary(b) if b.is_empty() => {
                    let _ = tcp_tx.shutdown().await;
                    let _ = state_tx.send(Client::Eof);
                }
                Message::Binary(b) if tcp_tx.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = state_tx.send(Client::Closed);
    });
    let (mut up, mut down) = (up, down);
    tokio::select! {
        _ = async {
            let _ = (&mut up).await;
            // The client answers our Close (or already closed); don't wait for it forever.
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut down).await;
        } => {}
        _ = access.revoked() => {}
    }
    // Whatever ended it, neither pump outlives the tunnel.
    up.abort();
    down.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_cookie_names_are_recognised_as_browsers_read_them() {
        for v in [
            "berth_session=x",
            "berth_app=x; Path=/",
            "berth_app_40123=x",
            "BERTH_SESSION=x",
            "__Host-berth_session=x; Secure; Path=/",
            "__secure-Berth_App=x",
            " berth_session =x",
            "=berth_session=x",
            "berth_session",
            "berth_later=x",
        ] {
            assert!(sets_berth_cookie(&HeaderValue::from_static(v)), "{v}");
        }
        for v in [
            "theme=dark",
            "app_berth_session=x",
            "=x",
            "session=berth_session",
        ] {
            assert!(!sets_berth_cookie(&HeaderValue::from_static(v)), "{v}");
        }
        assert!(sets_berth_cookie(
            &HeaderValue::from_bytes(b"a=\xff").unwrap()
        ));
    }

    #[test]
    fn next_must_be_a_path_on_the_same_origin() {
        for ok in ["/", "/lab", "/lab/tree?x=1#h", "/a%2F%2Fb"] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil",
            "/\\evil",
            "/\t/evil",
            "/\r\nX: y",
            "https://evil",
            "evil",
            "/a b",
            "/caf\u{e9}",
            "/a\\b",
            "javascript:alert(1)",
        ] {
            assert!(!safe_next(bad), "{bad:?}");
        }
        assert_eq!(percent_decode("/a%2Fb%zz%4").as_deref(), Some("/a/b%zz%4"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("\u{e9}"));
        assert_eq!(percent_decode("%FF"), None);
        // Never slices inside a multi-byte character.
        assert_eq!(percent_decode("%a\u{e9}").as_deref(), Some("%a\u{e9}"));
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("X-Foo, keep-alive, Host"),
        );
        h.insert("x-foo", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::HOST, HeaderValue::from_static("a.example"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let mut plain = h.clone();
        strip_hop_by_hop(&mut plain, false);
        let names: Vec<&str> = plain.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host", "x-kept"]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert!(!h.contains_key("x-foo") && !h.contains_key(header::TE));
    }

    #[test]
    fn app_origins_come_from_the_public_url() {
        let (scheme, host, port) = url_parts("HTTPS://Berth.Example.com:443/console");
        assert_eq!(origin(&scheme, &host, port), "https://berth.example.com");
        let (scheme, host, port) = url_parts("http://127.0.0.1:8080");
        assert_eq!(
            origin(&scheme, &host, Some(41000)),
            "http://127.0.0.1:41000"
        );
        assert_eq!(origin(&scheme, &host, port), "http://127.0.0.1:8080");
        let (scheme, host, port) = url_parts("http://[::1]:8080/");
        assert_eq!(origin(&scheme, &host, port), "http://[::1]:8080");
    }
}
