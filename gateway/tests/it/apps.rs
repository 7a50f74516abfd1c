//! The app proxy against a real app in a real container: the one-use link, the app cookie,
//! berth's credentials stripped, the app secret added, isolation between users, and the
//! "starting…" page while nothing listens.

use crate::common::{assert_problem, wait_status, Client, TestApp, USER_PASSWORD};
use reqwest::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use serde_json::json;
use std::time::{Duration, Instant};

/// An HTTP server that answers every GET with the request headers it received.
const HEADER_ECHO: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = "\n".join(f"{k.lower()}: {v}" for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

struct App<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    host: String,
}

impl<'a> App<'a> {
    fn new(app: &'a TestApp, url: &str) -> (App<'a>, String) {
        // The link's host is APP--ID.localhost:PORT; glibc cannot resolve *.localhost here, so
        // dial the gateway and send the Host header, as a browser would.
        let u = reqwest::Url::parse(url).unwrap();
        let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
        let path = format!("{}?{}", u.path(), u.query().unwrap_or(""));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        (App { app, http, host }, path)
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.app.base))
            .header(HOST, &self.host);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send().await.expect("request through the proxy")
    }
}

async fn app_url(c: &Client, id: &str, app: &str) -> String {
    let v = c
        .post(&format!("/api/v1/sessions/{id}/apps/{app}"), &json!({}))
        .await
        .expect_json(200);
    v["url"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn http_apps_live_on_their_own_origin_behind_a_one_use_link() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    app.create_user("bob", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let mut body = crate::common::small_session("web");
    body["preopen_ports"] = json!([8000]);
    let s = alice.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["apps"][0]["name"], "port-8000");
    let s = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    let container = s["container_id"].as_str().unwrap().to_string();

    // Bad preopened ports are refused with the port and the rule.
    let mut bad = crate::common::small_session("bad-ports");
    bad["preopen_ports"] = json!([80, 2222, 9000, 9000]);
    let p = assert_problem(
        &alice.post("/api/v1/sessions", &bad).await,
        400,
        "validation",
    );
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("80") && detail.contains("2222") && detail.contains("twice"),
        "{detail}"
    );

    // Only the owner gets a link; others get the missing-session answer.
    assert_problem(
        &bob.post(&format!("/api/v1/sessions/{id}/apps/port-8000"), &json!({}))
            .await,
        404,
        "not-found",
    );
    assert_problem(
        &alice
            .post(&format!("/api/v1/sessions/{id}/apps/nope"), &json!({}))
            .await,
        404,
        "not-found",
    );

    let url = app_url(&alice, &id, "port-8000").await;
    assert!(
        url.contains(&format!("port-8000--{id}.localhost:")),
        "{url}"
    );
    let (proxy, login_path) = App::new(&app, &url);

    // The link works once: it sets a host-only HttpOnly cookie and redirects.
    let r = proxy.get(&login_path, None).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()[LOCATION], "/");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && !set.to_ascii_lowercase().contains("domain="),
        "{set}"
    );
    let app_cookie = set.split(';').next().unwrap().to_string();
    assert_eq!(
        proxy.get(&login_path, None).await.status(),
        401,
        "a link is used once"
    );

    // Nothing listens yet: a page that retries by itself, not a bare 502.
    let r = proxy.get("/", Some(&app_cookie)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("retries by itself"));

    crate::common::run_python(&container, HEADER_ECHO);
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let r = proxy
            .get(
                "/some/path?q=1",
                Some(&format!(
                    "{app_cookie}; berth_session=console-secret; theme=dark"
                )),
            )
            .await;
        if r.status() == 200 {
            break r.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the app never answered: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // berth's cookies never reach the app; the app's own cookies do; the app secret is added.
    assert!(
        !seen.contains("berth_session") && !seen.contains("berth_app"),
        "{seen}"
    );
    assert!(seen.contains("theme=dark"), "{seen}");
    assert!(seen.contains("authorization: token "), "{seen}");

    // Without the cookie, or with it on another host, nothing reaches the container.
    assert_eq!(proxy.get("/", None).await.status(), 401);
    let other = App {
        app: &app,
        http: proxy.http.clone(),
        host: proxy.host.replace("port-8000--", "other--"),
    };
    assert_eq!(other.get("/", Some(&app_cookie)).await.status(), 401);

    // Bob's own app cookie does not open Alice's app.
    let mut bb = crate::common::small_session("bobweb");
    bb["preopen_ports"] = json!([8000]);
    let bs = bob.create_session(bb).await;
    let bid = bs["id"].as_str().unwrap().to_string();
    wait_status(&bob, &bid, "RUNNING", Duration::from_secs(60)).await;
    let burl = app_url(&bob, &bid, "port-8000").await;
    let (bproxy, bpath) = App::new(&app, &burl);
    let r = bproxy.get(&bpath, None).await;
    let bob_cookie = crate::common::set_cookie_pair(&r);
    assert_eq!(proxy.get("/", Some(&bob_cookie)).await.status(), 401);

    // The console's own origin never serves the app, and the app host never serves the API.
    let r = proxy
        .get(
            "/api/v1/me",
            Some(&format!(
                "{app_cookie}; berth_session={}",
                alice.token.clone().unwrap()
            )),
        )
        .await;
    assert!(
        !r.text().await.unwrap().contains("\"username\""),
        "the API must not answer on an app host"
    );

    // An app's page cannot open a tunnel or terminal as the user: a websocket upgrade that
    // carries the console cookie must come from the console's origin.
    let ws_url = format!(
        "{}/api/v1/sessions/{id}/tunnel/port-8000",
        app.base.replacen("http", "ws", 1)
    );
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        ws_url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("cookie", alice.cookie_header().parse().unwrap());
    req.headers_mut()
        .insert("origin", format!("http://{}", proxy.host).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 403),
        other => panic!(
            "a cross-origin upgrade with the cookie must be refused: {:?}",
            other.map(|_| ())
        ),
    }

    // Once the session ends, the app is gone.
    crate::common::end_session(&alice, &id).await;
    assert_eq!(proxy.get("/", Some(&app_cookie)).await.status(), 404);
    crate::common::end_session(&bob, &bid).await;
}

#[tokio::test]
async fn port_mode_gives_each_app_a_listener_of_its_own() {
    let app = TestApp::spawn_with_config("app_mode = \"port\"\napp_ports = \"0\"\n").await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let (id, container) = crate::common::running_with_ports(&alice, "ported", &[8000]).await;
    crate::common::run_python(&container, HEADER_ECHO);

    let url = app_url(&alice, &id, "port-8000").await;
    let u = reqwest::Url::parse(&url).unwrap();
    assert_eq!(u.host_str(), Some("127.0.0.1"), "{url}");
    assert_ne!(
        u.port(),
        Some(app.addr.port()),
        "never the console's own port"
    );
    // The same app keeps its port.
    let again = reqwest::Url::parse(&app_url(&alice, &id, "port-8000").await).unwrap();
    assert_eq!(again.port(), u.port());
    let origin = format!("http://127.0.0.1:{}", u.port().unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let cookie = crate::common::set_cookie_pair(&r);
    assert!(
        cookie.starts_with(&format!("berth_app_{}=", u.port().unwrap())),
        "{cookie}"
    );
    assert_eq!(
        http.get(url.as_str()).send().await.unwrap().status(),
        401,
        "links work once"
    );
    assert_eq!(
        http.get(format!("{origin}/"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let r = http
            .get(format!("{origin}/x"))
            .header(
                COOKIE,
                format!("{cookie}; berth_app_1=other; berth_session=s; keep=1"),
            )
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break r.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the app never answered: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !seen.contains("berth_"),
        "berth's cookies are stripped: {seen}"
    );
    assert!(seen.contains("keep=1"), "{seen}");

    // The listener closes with the session.
    crate::common::end_session(&alice, &id).await;
    let gone = http
        .get(format!("{origin}/"))
        .header(COOKIE, &cookie)
        .send()
        .await;
    assert!(
        gone.is_err() || gone.unwrap().status() == 404,
        "the app's port is closed or answers 404"
    );
}

/// An app that records what reaches it and answers like a hostile one: every method, a
/// websocket handshake, hop-by-hop headers of its own and `Set-Cookie` for berth's names.
/// `GET /seen` lists the requests it got (`METHOD PATH`); other answers echo the headers.
const RECORDER: &str = r#"
import base64, hashlib, http.server
SEEN = []
COOKIES = ["berth_session=evil; Domain=localhost; Path=/", "berth_app=evil; Path=/",
    "BERTH_SESSION=evil", "__Host-berth_session=evil; Secure; Path=/",
    "__Secure-berth_app=evil; Secure", "berth_app_1234=evil", "=berth_session=evil",
    " berth_session =evil", "berth_session", "theme=dark; Path=/", "app_state=1"]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path == "/seen":
            body = "\n".join(SEEN).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        SEEN.append(f"{self.command} {self.path}")
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade, X-Bar")
            self.send_header("X-Bar", "hop")
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
            self.send_header("Set-Cookie", "berth_session=evil; Path=/")
            self.end_headers()
            self.wfile.flush()
            while self.connection.recv(65536):
                pass
            self.close_connection = True
            return
        body = "\n".join(f"{k.lower()}: {v}" for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "X-Bar")
        self.send_header("X-Bar", "hop")
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("Proxy-Authenticate", "Basic realm=app")
        self.send_header("Trailer", "X-Baz")
        for c in COOKIES:
            self.send_header("Set-Cookie", c)
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = any
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

/// A logged-in app: requests to it go to `dial` (the gateway's address) with `Host: host`.
struct LoggedIn {
    http: reqwest::Client,
    dial: String,
    host: String,
    cookie: String,
}

impl LoggedIn {
    /// Spends `url` (an app link) and keeps the cookie it sets.
    async fn open(app: &TestApp, url: &str) -> LoggedIn {
        let u = reqwest::Url::parse(url).unwrap();
        let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
        // Subdomain hosts do not resolve here: dial the gateway. Port mode dials the host.
        let dial = if host.contains("--") {
            app.base.clone()
        } else {
            format!("http://{host}")
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let r = http
            .get(format!("{dial}{}?{}", u.path(), u.query().unwrap()))
            .header(HOST, &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "the app link logs in");
        let cookie = crate::common::set_cookie_pair(&r);
        LoggedIn {
            http,
            dial,
            host,
            cookie,
        }
    }

    /// The app's own origin, as a browser on it sends `Origin`.
    fn origin(&self) -> String {
        format!("http://{}", self.host)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.dial))
            .header(HOST, &self.host)
            .header(COOKIE, &self.cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request through the proxy")
    }

    /// What the app has seen, once it answers.
    async fn seen(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.send(reqwest::Method::GET, "/seen", &[]).await;
            if r.status() == 200 {
                return r.text().await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the app never answered: {}",
                r.status()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A websocket handshake through the proxy with `origin` (if any): the HTTP status and
    /// answer headers.
    async fn upgrade(&self, path: &str, origin: Option<&str>) -> (u16, reqwest::header::HeaderMap) {
        let url = format!("{}{path}", self.dial.replacen("http", "ws", 1));
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                url.as_str(),
            )
            .unwrap();
        req.headers_mut().insert("host", self.host.parse().unwrap());
        req.headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        let (status, headers) = match tokio_tungstenite::connect_async(req).await {
            Ok((_, r)) => (r.status().as_u16(), r.headers().clone()),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                (r.status().as_u16(), r.headers().clone())
            }
            Err(e) => panic!("websocket handshake through the proxy failed: {e}"),
        };
        let mut out = reqwest::header::HeaderMap::new();
        for (k, v) in &headers {
            out.append(
                reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        (status, out)
    }
}

/// Asserts the proxy's 403 for a foreign origin: a sentence, and it says why.
async fn assert_foreign_refused(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 403, "{what} must be refused");
    let body = r.text().await.unwrap();
    assert!(body.contains("another origin"), "{what}: {body}");
}

/// Writes and websockets from another origin never reach the app; the app's own origin and
/// Origin-less clients (not a browser's cross-origin request) pass; reads pass from anywhere.
async fn attack_origins(a: &LoggedIn, foreign: &[&str]) {
    use reqwest::Method;
    let seen = a.seen().await;
    assert!(!seen.contains("/write"), "{seen}");
    for (i, o) in foreign.iter().enumerate() {
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = a
                .send(m.clone(), &format!("/write-foreign-{i}"), &[("origin", o)])
                .await;
            assert_foreign_refused(r, &format!("{m} from {o}")).await;
        }
        let (status, _) = a.upgrade(&format!("/ws-foreign-{i}"), Some(o)).await;
        assert_eq!(status, 403, "a websocket from {o} must be refused");
        // Reads are not refused (the browser keeps their answers from the other page).
        let r = a
            .send(Method::GET, &format!("/read-foreign-{i}"), &[("origin", o)])
            .await;
        assert_eq!(r.status(), 200, "a GET from {o}");
    }
    let own = a.origin();
    let r = a
        .send(Method::POST, "/write-own", &[("origin", &own)])
        .await;
    assert_eq!(r.status(), 200, "a write from the app's own origin passes");
    let r = a
        .send(
            Method::POST,
            "/write-own-case",
            &[("origin", &own.to_uppercase())],
        )
        .await;
    assert_eq!(r.status(), 200, "origins compare without case");
    let r = a.send(Method::POST, "/write-no-origin", &[]).await;
    assert_eq!(r.status(), 200, "a write without Origin passes");
    let (status, headers) = a.upgrade("/ws-own", Some(&own)).await;
    assert_eq!(status, 101, "a websocket from the app's own origin passes");
    assert!(
        !headers.contains_key("x-bar") && !headers.contains_key(SET_COOKIE),
        "the 101 answer loses hop-by-hop headers and berth's cookies: {headers:?}"
    );
    let (status, _) = a.upgrade("/ws-no-origin", None).await;
    assert_eq!(status, 101, "a websocket without Origin passes");

    let seen = a.seen().await;
    assert!(
        !seen.contains("/write-foreign") && !seen.contains("/ws-foreign"),
        "refused requests must never reach the app:\n{seen}"
    );
    for must in [
        "POST /write-own",
        "POST /write-own-case",
        "POST /write-no-origin",
        "GET /ws-own",
        "GET /ws-no-origin",
        "GET /read-foreign-0",
    ] {
        assert!(
            seen.lines().any(|l| l == must),
            "{must} reached the app:\n{seen}"
        );
    }
}

/// The app's `Set-Cookie` for berth's names never reaches the browser (its own cookies do),
/// and hop-by-hop headers are dropped both ways.
async fn attack_headers(a: &LoggedIn) {
    let r = a
        .send(
            reqwest::Method::GET,
            "/echo",
            &[
                ("connection", "X-Foo, Keep-Alive"),
                ("x-foo", "hop-secret"),
                ("keep-alive", "timeout=9"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
                ("te", "trailers"),
                ("trailer", "X-Baz"),
                ("x-end-to-end", "kept"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let seen = r.text().await.unwrap();
    for h in [
        "x-foo",
        "keep-alive:",
        "proxy-authorization",
        "te:",
        "trailer",
    ] {
        assert!(
            !seen.lines().any(|l| l.starts_with(h)),
            "the client's hop-by-hop {h} reached the app:\n{seen}"
        );
    }
    assert!(
        !seen
            .lines()
            .any(|l| l.starts_with("connection:") && l.contains("X-Foo")),
        "{seen}"
    );
    assert!(seen.contains("x-end-to-end: kept"), "{seen}");
    for h in ["x-bar", "keep-alive", "proxy-authenticate", "trailer"] {
        assert!(
            !headers.contains_key(h),
            "the app's hop-by-hop {h} reached the client: {:?}",
            headers
        );
    }
    if let Some(c) = headers.get("connection") {
        assert!(
            !c.to_str().unwrap().to_ascii_lowercase().contains("x-bar"),
            "{c:?}"
        );
    }
    let cookies: Vec<String> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cookies,
        ["theme=dark; Path=/", "app_state=1"],
        "only the app's own cookies reach the browser"
    );
}

/// The login link's `next` stays on the app's origin: anything else is a 400 that leaves the
/// token usable.
async fn attack_next(app: &TestApp, url: &str) {
    let u = reqwest::Url::parse(url).unwrap();
    let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let dial = if host.contains("--") {
        app.base.clone()
    } else {
        format!("http://{host}")
    };
    let token = u
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |next: &str| {
        http.get(format!("{dial}/__berth/auth?token={token}&next={next}"))
            .header(HOST, &host)
            .send()
    };
    for bad in [
        "//evil.example/",
        "%2F%2Fevil.example",
        "/%09/evil.example",
        "/%0D%0ALocation:%20http://evil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/caf%C3%A9",
        "/a%20b",
        "",
    ] {
        let r = login(bad).await.unwrap();
        assert_eq!(r.status(), 400, "next={bad} must be refused");
        assert!(!r.headers().contains_key(LOCATION), "next={bad}");
        assert!(!r.headers().contains_key(SET_COOKIE), "next={bad}");
        assert!(
            r.text().await.unwrap().contains("path on this app"),
            "next={bad}"
        );
    }
    let r = login("/lab/tree%3Fx%3D1").await.unwrap();
    assert_eq!(r.status(), 302, "a refused next leaves the token usable");
    assert_eq!(r.headers()[LOCATION], "/lab/tree?x=1");
}

#[tokio::test]
async fn apps_refuse_writes_and_websockets_from_other_origins() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (id, container) = crate::common::running_with_ports(&alice, "rec", &[8000]).await;
    crate::common::run_python(&container, RECORDER);
    let a = LoggedIn::open(&app, &app_url(&alice, &id, "port-8000").await).await;
    let (bid, _) = crate::common::running_with_ports(&bob, "other", &[8000]).await;
    let bob_app = reqwest::Url::parse(&app_url(&bob, &bid, "port-8000").await).unwrap();
    let bob_origin = bob_app.origin().ascii_serialization();
    let port = app.addr.port();
    attack_origins(
        &a,
        &[
            &bob_origin,
            "null",
            &app.base,
            &format!("http://evil.localhost:{port}"),
            // The app's host on another scheme or port is another origin.
            &format!("https://{}", a.host),
            &format!("http://port-8000--{id}.localhost:1"),
            &format!("http://port-8000--{id}.localhost"),
            &format!("{}/", a.origin()),
        ],
    )
    .await;
    crate::common::end_session(&alice, &id).await;
    crate::common::end_session(&bob, &bid).await;
}

#[tokio::test]
async fn apps_cannot_set_berth_cookies_or_pass_hop_by_hop_headers() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (id, container) = crate::common::running_with_ports(&alice, "rec", &[8000]).await;
    crate::common::run_python(&container, RECORDER);
    let a = LoggedIn::open(&app, &app_url(&alice, &id, "port-8000").await).await;
    a.seen().await;
    attack_headers(&a).await;
    // A cookie of the same name that another app's page tossed in first (a parent-domain
    // cookie) does not lock the owner out: each value is tried.
    let r = a
        .http
        .get(format!("{}/seen", a.dial))
        .header(HOST, &a.host)
        .header(
            COOKIE,
            format!("berth_app=tossed-by-another-app; {}", a.cookie),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    crate::common::end_session(&alice, &id).await;
}

#[tokio::test]
async fn app_login_links_never_lead_off_the_app_origin() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (id, _) = crate::common::running_with_ports(&alice, "rec", &[8000]).await;
    attack_next(&app, &app_url(&alice, &id, "port-8000").await).await;
    crate::common::end_session(&alice, &id).await;
}

#[tokio::test]
async fn port_mode_apps_keep_to_their_own_origin_too() {
    let app = TestApp::spawn_with_config("app_mode = \"port\"\napp_ports = \"0\"\n").await;
    let alice = app.user("alice").await;
    let (id, container) = crate::common::running_with_ports(&alice, "ported", &[8000, 8001]).await;
    crate::common::run_python(&container, RECORDER);
    let a = LoggedIn::open(&app, &app_url(&alice, &id, "port-8000").await).await;
    let other = reqwest::Url::parse(&app_url(&alice, &id, "port-8001").await).unwrap();
    let other_origin = other.origin().ascii_serialization();
    assert_ne!(other_origin, a.origin());
    let port = a.host.rsplit_once(':').unwrap().1.to_string();
    attack_origins(
        &a,
        &[
            // Another app's listener, the console, the same port on another name.
            &other_origin,
            &app.base,
            &format!("http://localhost:{port}"),
            "null",
        ],
    )
    .await;
    attack_headers(&a).await;
    attack_next(&app, &app_url(&alice, &id, "port-8000").await).await;
    crate::common::end_session(&alice, &id).await;
}

#[tokio::test]
async fn the_console_cannot_be_framed_or_sniffed_but_apps_can_frame_themselves() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/no-such-thing"),
        ("POST", "/api/v1/auth/login"),
    ] {
        let r = http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(
            h.get("content-security-policy")
                .map(|v| v.to_str().unwrap()),
            Some("frame-ancestors 'none'"),
            "{method} {path}: {h:?}"
        );
        assert_eq!(
            h.get("x-frame-options").map(|v| v.to_str().unwrap()),
            Some("DENY"),
            "{method} {path}"
        );
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{method} {path}"
        );
    }
    // An app host's answers are the app's: berth adds no framing rule there.
    let r = http
        .get(format!("{}/", app.base))
        .header(
            HOST,
            format!(
                "port-8000--{}.localhost:{}",
                uuid::Uuid::new_v4(),
                app.addr.port()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.headers().contains_key("x-frame-options"));
    assert!(!r.headers().contains_key("content-security-policy"));
}
