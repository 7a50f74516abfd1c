//! The app proxy: HTTP apps (JupyterLab, a preopened port) served on origins of their own,
//! `APP--SESSIONID.BASE_DOMAIN`, never on the console's.
//!
//! Flow of one app visit:
//! 1. The gateway checks the session's owner and calls [`AppProxy::link`], which issues a
//!    one-use token ([`AppProxy::issue`]), valid for a minute, bound to that session and app.
//! 2. The browser opens `SCHEME://APP--ID.BASE/__berth/auth?token=…&next=/` (the scheme of
//!    the gateway's public URL); the proxy takes
//!    the token (once), sets an HttpOnly cookie for that host only, and redirects ([`login`]).
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
//! 5. The request is forwarded to the port published on the node's loopback ([`forward`]), with
//!    hop-by-hop headers, berth's own cookies and credentials removed and the app's secret
//!    (`Authorization: token …`) added. Websocket upgrades are spliced byte for byte;
//!    keep-alive is pooled. The answer loses its hop-by-hop headers and every `Set-Cookie`
//!    for a cookie named `berth_…` (berth's own names), so an app cannot set berth's cookies.
//! 6. An app not listening yet gets a small "starting…" page that retries, never a bare 502.
//!
//! Every request that reaches an app, and every byte of its body or websocket while it moves,
//! counts as the session's activity for the idle timeout ([`crate::activity`]); so do a
//! tunnel's bytes.
//!
//! Timeouts: connecting to the app 5 s (then the starting page), response headers 120 s,
//! bodies and websockets are not cut while they move.
//!
//! Modules: [`login`] (one-use links, the host-only app cookie, `next`), [`forward`] (what
//! crosses to the app and back, keep-alive, upgrades, the starting page), [`port_mode`]
//! (per-app listeners for sites without wildcard DNS) and [`tunnel`] (a TCP app's bytes over
//! a websocket, for `berth app --bind`). This file holds the [`AppProxy`] and its dispatch.

mod forward;
mod login;
mod port_mode;
pub mod tunnel;

pub use login::cookie;
pub use port_mode::PortMode;
pub use tunnel::tunnel;

use crate::activity::{Activity, Toucher};
use crate::observe::Observe;
use crate::revoke::Watch;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie that carries an app login, on the app's host only.
pub const APP_COOKIE: &str = "berth_app";
/// How long connecting to an app (or a tunnel's TCP end) may take before it counts as not
/// listening.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a resolved app target is reused without asking the resolver again.
const TARGET_TTL: Duration = Duration::from_secs(2);

/// Where an app of a running session is, and who may use it.
#[derive(Clone)]
pub struct AppTarget {
    /// The session's owner: only their logins reach the app.
    pub owner_id: String,
    /// `http` or `tcp` (a label value of the image).
    pub protocol: String,
    /// The app's port as published on the node's loopback.
    pub addr: SocketAddr,
    /// Sent to the app as `Authorization: token …` (JupyterLab's token).
    pub secret: String,
}

impl std::fmt::Debug for AppTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTarget")
            .field("owner_id", &self.owner_id)
            .field("protocol", &self.protocol)
            .field("addr", &self.addr)
            .field("secret", &"***")
            .finish()
    }
}

/// Looks up apps of running sessions (the gateway answers from its database).
#[async_trait::async_trait]
pub trait AppResolver: Send + Sync {
    /// The target of `app` of a running `session_id`, `None` when there is none.
    async fn resolve(&self, session_id: &str, app: &str) -> Option<AppTarget>;
}

/// What a one-use token or an app login grants: one app of one session, to its owner.
#[derive(Debug, Clone)]
struct Grant {
    session_id: String,
    app: String,
    owner_id: String,
    expires: Instant,
    /// The owner's access as checked when the link was made; revoked, the grant is void.
    access: Watch,
}

impl Grant {
    /// Whether the grant still opens `app` of `session_id` at `now`.
    fn opens(&self, session_id: &str, app: &str, now: Instant) -> bool {
        self.expires > now
            && !self.access.is_revoked()
            && self.session_id == session_id
            && self.app == app
    }
}

/// The app proxy of one gateway: app logins, the resolved targets and port mode's listeners.
pub struct AppProxy {
    base_domain: String,
    port_mode: Option<PortMode>,
    /// Port mode: the listener of each open `(session, app)`.
    listeners: Mutex<HashMap<(String, String), port_mode::Listener>>,
    resolver: Arc<dyn AppResolver>,
    /// Recently resolved targets, so a busy app costs no database read per request;
    /// dropped when the session ends ([`AppProxy::forget_session`]) or after [`TARGET_TTL`].
    targets: Mutex<HashMap<(String, String), (AppTarget, Instant)>>,
    /// One-use tokens by hash.
    tokens: Mutex<HashMap<[u8; 32], Grant>>,
    /// App logins (cookie values) by hash.
    logins: Mutex<HashMap<[u8; 32], Grant>>,
    /// Pooled keep-alive connections to the apps.
    client: Client<HttpConnector, Body>,
    /// True once the server stops: port mode's listeners stop accepting and drain.
    stopping: tokio::sync::watch::Sender<bool>,
    /// App and tunnel traffic per session, taken by the gateway's idle check.
    activity: Arc<Activity>,
    /// App requests and open app websockets, for metrics.
    observe: Observe,
}

/// The SHA-256 of a token or login: only hashes are kept.
fn hash(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// A small HTML page of the proxy's own (errors, the starting page).
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
    /// A proxy for apps on `APP--SESSION.base_domain` (or, with `port_mode`, on listeners of
    /// their own) whose targets `resolver` finds.
    pub fn new(
        base_domain: &str,
        port_mode: Option<PortMode>,
        resolver: Arc<dyn AppResolver>,
    ) -> Self {
        Self {
            base_domain: base_domain.trim_matches('.').to_ascii_lowercase(),
            port_mode,
            listeners: Mutex::default(),
            resolver,
            targets: Mutex::default(),
            tokens: Mutex::default(),
            logins: Mutex::default(),
            client: forward::client(),
            stopping: tokio::sync::watch::channel(false).0,
            activity: Arc::default(),
            observe: Observe::default(),
        }
    }

    /// The proxy, reporting app requests and open app websockets to `observe`.
    pub fn with_observer(mut self, observe: Observe) -> Self {
        self.observe = observe;
        self
    }

    /// Where this proxy reports (tunnels opened beside it report there too).
    pub fn observer(&self) -> &Observe {
        &self.observe
    }

    /// Sessions with app or tunnel traffic since the last call, and when it last happened
    /// (for the idle timeout).
    pub fn take_activity(&self) -> Vec<(String, std::time::SystemTime)> {
        self.activity.take()
    }

    /// Notes the traffic of one tunnel (or other long-lived stream) of `session_id` as the
    /// session's activity.
    pub fn toucher(&self, session_id: &str) -> Toucher {
        self.activity.toucher(session_id)
    }

    /// The server is stopping: port mode's listeners stop accepting and let their requests
    /// finish, as the console's port does.
    pub fn stop_listeners(&self) {
        self.stopping.send_replace(true);
    }

    /// The domain app hosts live under (lowercase, without dots around it).
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
    /// carries the app login. Its status and the time to its answer's headers go to the
    /// observer.
    async fn serve(
        &self,
        req: Request<Body>,
        app: &str,
        session_id: &str,
        cookie_name: &str,
        own: &str,
    ) -> Response<Body> {
        let started = Instant::now();
        let r = self
            .serve_unobserved(req, app, session_id, cookie_name, own)
            .await;
        self.observe
            .app_request(app, r.status().as_u16(), started.elapsed());
        r
    }

    async fn serve_unobserved(
        &self,
        req: Request<Body>,
        app: &str,
        session_id: &str,
        cookie_name: &str,
        own: &str,
    ) -> Response<Body> {
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
            return self.login(&req, app, session_id, cookie_name);
        }
        let Some(grant) = self.logged_in(req.headers(), app, session_id, cookie_name) else {
            return page(
                StatusCode::UNAUTHORIZED,
                "Open this app from berth",
                "You are not logged in to this app. Open it from the session page of the berth console.",
                false,
            );
        };
        let Some(target) = self
            .target(session_id, app)
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
        // A request that reaches the app is the session's activity; its body and, for an
        // upgrade, the spliced bytes keep counting while they move.
        self.activity.note(session_id);
        let toucher = self.activity.toucher(session_id);
        self.forward(req, app, &target, own, grant.access, toucher)
            .await
    }
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_targets_secret_prints_as_stars() {
        let t = AppTarget {
            owner_id: OWNER.into(),
            protocol: "http".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            secret: APP_SECRET.into(),
        };
        let shown = format!("{t:?}");
        assert!(
            !shown.contains(APP_SECRET) && shown.contains("***"),
            "{shown}"
        );
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

    #[tokio::test]
    async fn app_hosts_name_an_app_and_a_session_under_the_base_domain() {
        let (proxy, _) = proxy(closed_port().await, None);
        assert_eq!(proxy.base_domain(), "apps.test");
        let want = Some((APP.to_string(), SESSION.to_string()));
        assert_eq!(proxy.parse_host(APP_HOST), want);
        assert_eq!(proxy.parse_host(&APP_HOST.to_uppercase()), want);
        assert_eq!(proxy.parse_host(&format!("lab--{SESSION}.apps.test")), want);
        for bad in [
            "berth.test:8080",
            "apps.test",
            &format!("lab--{SESSION}.apps.test.evil"),
            &format!("lab--{SESSION}.evilapps.test"),
            "lab--not-a-uuid.apps.test",
            &format!("--{SESSION}.apps.test"),
            &format!("la_b--{SESSION}.apps.test"),
            &format!("{}--{SESSION}.apps.test", "a".repeat(21)),
        ] {
            assert_eq!(proxy.parse_host(bad), None, "{bad}");
        }
        // The origin is the configuration's, whatever Host the request carried.
        assert_eq!(proxy.app_origin(PUBLIC_URL, APP, SESSION, None), OWN_ORIGIN);
    }

    #[test]
    fn writes_and_upgrades_need_the_apps_own_origin() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(!needs_own_origin(&Method::GET, &h(&[])));
        assert!(!needs_own_origin(&Method::HEAD, &h(&[])));
        assert!(!needs_own_origin(&Method::OPTIONS, &h(&[])));
        assert!(needs_own_origin(&Method::POST, &h(&[])));
        assert!(needs_own_origin(&Method::DELETE, &h(&[])));
        assert!(needs_own_origin(
            &Method::GET,
            &h(&[("upgrade", "websocket")])
        ));
        let own = "http://a.example";
        assert!(!foreign_origin(&h(&[]), own));
        assert!(!foreign_origin(&h(&[("origin", "HTTP://A.example")]), own));
        assert!(foreign_origin(&h(&[("origin", "null")]), own));
        assert!(foreign_origin(
            &h(&[("origin", "http://a.example:81")]),
            own
        ));
        assert!(foreign_origin(
            &h(&[
                ("origin", "http://a.example"),
                ("origin", "http://b.example")
            ]),
            own
        ));
    }

    #[tokio::test]
    async fn a_foreign_write_or_upgrade_never_reaches_the_app() {
        let (app, hits) = app_server().await;
        let (proxy, revocations) = proxy(app, None);
        let cookie = log_in(&proxy, &revocations).await;
        let send = |method: &str, origin: Option<&str>, upgrade: bool| {
            let mut r = request(method, "/echo").header("cookie", &cookie);
            if let Some(o) = origin {
                r = r.header("origin", o);
            }
            if upgrade {
                r = r
                    .header("upgrade", "websocket")
                    .header("connection", "upgrade");
            }
            proxy.handle(r.body(Body::empty()).unwrap(), PUBLIC_URL)
        };
        for (method, origin, upgrade) in [
            ("POST", Some("http://evil.test"), false),
            ("POST", Some("null"), false),
            ("PUT", Some("http://berth.test:8080"), false),
            ("GET", Some("http://evil.test"), true),
        ] {
            let r = send(method, origin, upgrade).await;
            assert_eq!(r.status(), 403, "{method} from {origin:?}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        // The app's own origin, no Origin at all, and reads from anywhere pass.
        assert_eq!(send("POST", Some(OWN_ORIGIN), false).await.status(), 200);
        assert_eq!(send("POST", None, false).await.status(), 200);
        assert_eq!(
            send("GET", Some("http://evil.test"), false).await.status(),
            200
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn without_a_live_login_nothing_reaches_the_app() {
        let (app, hits) = app_server().await;
        let (proxy, revocations) = proxy(app, None);
        let get = |host: &str, cookie: Option<&str>| {
            let mut r = Request::builder().uri("/echo").header("host", host);
            if let Some(c) = cookie {
                r = r.header("cookie", c);
            }
            proxy.handle(r.body(Body::empty()).unwrap(), PUBLIC_URL)
        };
        assert_eq!(get("berth.test:8080", None).await.status(), 404);
        assert_eq!(get(APP_HOST, None).await.status(), 401);
        assert_eq!(
            get(APP_HOST, Some("berth_app=nonsense")).await.status(),
            401
        );
        let cookie = log_in(&proxy, &revocations).await;
        // The login opens this app of this session only.
        let other = format!("other--{SESSION}.apps.test");
        assert_eq!(get(&other, Some(&cookie)).await.status(), 401);
        assert_eq!(get(APP_HOST, Some(&cookie)).await.status(), 200);
        // Revoking the owner's access voids the login.
        revocations.revoke(OWNER);
        assert_eq!(get(APP_HOST, Some(&cookie)).await.status(), 401);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_login_of_someone_else_than_the_owner_opens_nothing() {
        let (app, hits) = app_server().await;
        let (proxy, revocations) = proxy(app, None);
        let token = proxy.issue(
            SESSION,
            APP,
            revocations.watch("intruder", revocations.now()),
        );
        let r = proxy
            .handle(
                request("GET", &format!("/__berth/auth?token={token}"))
                    .body(Body::empty())
                    .unwrap(),
                PUBLIC_URL,
            )
            .await;
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let r = proxy
            .handle(
                request("GET", "/echo")
                    .header("cookie", cookie)
                    .body(Body::empty())
                    .unwrap(),
                PUBLIC_URL,
            )
            .await;
        assert_eq!(r.status(), 404);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }
}
