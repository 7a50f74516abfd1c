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
    let bob_cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
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
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
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
