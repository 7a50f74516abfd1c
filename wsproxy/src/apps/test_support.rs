//! Fixtures for the app proxy's tests: a resolver with one app, a real app server on a
//! loopback socket, the proxy served on a socket of its own, and a plain HTTP client.

use super::{AppProxy, AppResolver, AppTarget, PortMode};
use crate::revoke::{Revocations, Watch};
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The session every test app belongs to.
pub const SESSION: &str = "0b6f4a8e-5c1d-4c8e-9a52-2f1f6b7c9d10";
/// The app's name.
pub const APP: &str = "lab";
/// The owner of the session.
pub const OWNER: &str = "owner-1";
/// The console's public URL.
pub const PUBLIC_URL: &str = "http://berth.test:8080";
/// The app's own origin under [`PUBLIC_URL`] and base domain `apps.test`.
pub const OWN_ORIGIN: &str = "http://lab--0b6f4a8e-5c1d-4c8e-9a52-2f1f6b7c9d10.apps.test:8080";
/// The app's host as a browser sends it.
pub const APP_HOST: &str = "lab--0b6f4a8e-5c1d-4c8e-9a52-2f1f6b7c9d10.apps.test:8080";
/// The secret the proxy must add for the app.
pub const APP_SECRET: &str = "app-secret-1";

/// Resolves [`APP`] of [`SESSION`] to one address, owned by [`OWNER`].
pub struct OneApp(pub SocketAddr);

#[async_trait::async_trait]
impl AppResolver for OneApp {
    async fn resolve(&self, session_id: &str, app: &str) -> Option<AppTarget> {
        (session_id == SESSION && app == APP).then(|| AppTarget {
            owner_id: OWNER.into(),
            protocol: "http".into(),
            addr: self.0,
            secret: APP_SECRET.into(),
        })
    }
}

/// A proxy (subdomain mode under `apps.test`, or `port_mode`) whose app is at `app`, and the
/// revocations its watches come from.
pub fn proxy(app: SocketAddr, port_mode: Option<PortMode>) -> (Arc<AppProxy>, Arc<Revocations>) {
    let proxy = AppProxy::new(".Apps.Test.", port_mode, Arc::new(OneApp(app)));
    (Arc::new(proxy), Arc::new(Revocations::default()))
}

/// The owner's access as of now.
pub fn access(revocations: &Arc<Revocations>) -> Watch {
    revocations.watch(OWNER, revocations.now())
}

/// A request to the app host.
pub fn request(method: &str, path_and_query: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", APP_HOST)
}

/// Logs the owner in through a fresh link; returns the `Cookie` header value that carries it.
pub async fn log_in(proxy: &Arc<AppProxy>, revocations: &Arc<Revocations>) -> String {
    let token = proxy.issue(SESSION, APP, access(revocations));
    let r = proxy
        .handle(
            request("GET", &format!("/__berth/auth?token={token}"))
                .body(Body::empty())
                .unwrap(),
            PUBLIC_URL,
        )
        .await;
    assert_eq!(r.status(), 302, "the login link works");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// A loopback port that nothing listens on (bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Serves `router` on a fresh loopback port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, router).await.unwrap();
    });
    addr
}

/// Serves the proxy's `handle` (everything on the app host) on a fresh loopback port.
pub async fn serve_proxy(proxy: Arc<AppProxy>) -> SocketAddr {
    serve(axum::Router::new().fallback(move |req: Request<Body>| {
        let proxy = proxy.clone();
        async move { proxy.handle(req, PUBLIC_URL).await }
    }))
    .await
}

/// A test app: `/echo` answers with the request's headers as JSON (and sets a cookie of
/// berth's, one of its own and a hop-by-hop header), `/ws` echoes websocket messages. The
/// counter counts requests that reached it.
pub async fn app_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = axum::Router::new()
        .route(
            "/ws",
            axum::routing::get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket: WebSocket| async move {
                    while let Some(Ok(m)) = socket.recv().await {
                        if matches!(m, Message::Text(_) | Message::Binary(_))
                            && socket.send(m).await.is_err()
                        {
                            break;
                        }
                    }
                })
            }),
        )
        .fallback(|headers: HeaderMap| async move {
            let mut seen = serde_json::Map::new();
            for name in headers.keys() {
                let values: Vec<serde_json::Value> = headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap_or("").into())
                    .collect();
                seen.insert(name.to_string(), values.into());
            }
            Response::builder()
                .header("set-cookie", "berth_session=from-the-app; Path=/")
                .header("set-cookie", "__Host-Berth_App=x; Path=/; Secure")
                .header("set-cookie", "theme=light; Path=/")
                .header("connection", "x-app-hop")
                .header("x-app-hop", "1")
                .header("x-app-kept", "1")
                .body(Body::from(serde_json::Value::Object(seen).to_string()))
                .unwrap()
        })
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                }
            },
        ));
    (serve(router).await, hits)
}

/// A plain HTTP/1 client for requests to real sockets.
pub fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// The body of an answer as text.
pub async fn text(r: Response<Body>) -> String {
    let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}
