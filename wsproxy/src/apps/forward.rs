//! Forwarding to an app: what crosses and what does not, keep-alive pooling, websocket
//! splicing and the "starting…" page.
//!
//! - Requests lose hop-by-hop headers ([`strip_hop_by_hop`]), every cookie named `berth_…`
//!   ([`strip_berth_cookies`]) and the client's `Authorization`, and gain the app's secret and
//!   `X-Forwarded-Host`/`-Proto`.
//! - Answers lose hop-by-hop headers and every `Set-Cookie` that would set a `berth_…`
//!   cookie, 101 answers included ([`clean_response_headers`]).
//! - An app that does not answer yet gets [`starting`], a page that retries, never a 502.

use super::{page, AppProxy, AppTarget, CONNECT_TIMEOUT};
use crate::activity::{Toucher, Touching};
use crate::revoke::Watch;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use cookie::{Cookie, ParseError};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;

/// How long an app may take to send its answer's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(120);
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

/// The pooled client the proxy forwards plain requests with.
pub(super) fn client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// The name a browser sends a cookie pair (`name=value`, the part of a `Set-Cookie` before
/// its attributes) back under. A pair without a name is a nameless cookie, which browsers
/// send as its bare value: `=berth_session=x` comes back as `berth_session=x`, and a pair
/// without `=` comes back as itself.
fn sent_name(pair: &str) -> String {
    match Cookie::parse(pair) {
        Ok(c) => c.name().to_string(),
        Err(ParseError::EmptyName) => {
            let value = pair.split_once('=').map_or("", |(_, v)| v);
            value.split('=').next().unwrap_or("").to_string()
        }
        Err(_) => pair.split('=').next().unwrap_or("").to_string(),
    }
}

/// The name of a pair of a request's `Cookie` header; for a nameless pair (`=x`) the empty
/// name, for a bare value (`x`, as browsers send a nameless cookie) the value itself.
fn request_name(pair: &str) -> String {
    match Cookie::parse(pair) {
        Ok(c) => c.name().to_string(),
        Err(_) => pair.split('=').next().unwrap_or("").to_string(),
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

/// Leaves the `Cookie` header without berth's own cookies; the others pass as sent.
fn strip_berth_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !is_berth_cookie(&request_name(pair)))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// Whether a `Set-Cookie` value would set one of berth's cookies, read as a browser reads it
/// (see [`sent_name`]). A value that is not text counts as one (it is dropped).
fn sets_berth_cookie(value: &HeaderValue) -> bool {
    let Ok(v) = value.to_str() else {
        return true;
    };
    is_berth_cookie(&sent_name(v.split(';').next().unwrap_or("")))
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

/// The page for an app that is not answering yet; it retries by itself.
pub(super) fn starting(app: &str) -> Response<Body> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Starting…",
        &format!("{app} is not answering yet; this page retries by itself every two seconds."),
        true,
    )
}

impl AppProxy {
    /// Forwards an authorised request for `app` to `target` (whose origin is `own`): berth's
    /// credentials out, the app's secret in. Upgrades are spliced while `access` holds.
    pub(super) async fn forward(
        &self,
        mut req: Request<Body>,
        app: &str,
        target: &AppTarget,
        own: &str,
        access: Watch,
        toucher: Toucher,
    ) -> Response<Body> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
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
            return upgrade_and_splice(req, target.addr, access, toucher, self.observer()).await;
        }
        match tokio::time::timeout(HEADER_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(mut resp)) => {
                clean_response_headers(resp.headers_mut(), false);
                // A long download or event stream counts while it moves.
                let mut toucher = toucher;
                resp.map(|b| {
                    Body::new(b.map_frame(move |f| {
                        toucher.touch();
                        f
                    }))
                })
            }
            // Refused, or accepted by Docker's port forwarder and dropped because nothing
            // listens in the container yet: either way the app is not up yet.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "app proxy: no answer from the app");
                starting(app)
            }
            Err(_) => page(
                StatusCode::GATEWAY_TIMEOUT,
                "The app is not answering",
                "The app took longer than two minutes to answer.",
                false,
            ),
        }
    }
}

/// A websocket (or other) upgrade: handshake with the app, then splice the two sockets until
/// either side ends or `access` is revoked; bytes either way count through `toucher`.
async fn upgrade_and_splice(
    mut req: Request<Body>,
    addr: SocketAddr,
    access: Watch,
    toucher: Toucher,
    observe: &crate::observe::Observe,
) -> Response<Body> {
    let client_side = hyper::upgrade::on(&mut req);
    // A bare connection writes the target as given: use the origin form (`/path?q`).
    if let Some(pq) = req.uri().path_and_query().cloned() {
        if let Ok(u) = Uri::builder().path_and_query(pq).build() {
            *req.uri_mut() = u;
        }
    }
    let stream =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => return starting("the app"),
        };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
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
    let observe = observe.clone();
    tokio::spawn(async move {
        let (Ok(c), Ok(u)) = (client_side.await, upstream.await) else {
            return;
        };
        let _open = observe.open(crate::observe::SocketKind::App);
        // Spliced until either side ends or the owner's access is revoked.
        let (mut c, mut u) = (Touching::new(TokioIo::new(c), toucher), TokioIo::new(u));
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

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
    fn berth_cookies_never_cross_to_the_app() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; berth_session=s; __Host-BERTH_app=a"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("berth_app_4100=p;x=berth_session; bare ;berth_app"),
        );
        strip_berth_cookies(&mut h);
        assert_eq!(h[header::COOKIE], "theme=dark; x=berth_session; bare");
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        let mut only_berth = HeaderMap::new();
        only_berth.insert(header::COOKIE, HeaderValue::from_static("berth_session=s"));
        strip_berth_cookies(&mut only_berth);
        assert!(!only_berth.contains_key(header::COOKIE));
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

    #[tokio::test]
    async fn a_forwarded_request_carries_the_apps_secret_and_nothing_of_berths() {
        let (app, hits) = app_server().await;
        let (proxy, revocations) = proxy(app, None);
        let login = log_in(&proxy, &revocations).await;
        let r = proxy
            .handle(
                request("POST", "/echo?q=1")
                    .header("cookie", format!("{login}; theme=dark; berth_session=s"))
                    .header("authorization", "Bearer berth_key")
                    .header("connection", "x-hop")
                    .header("x-hop", "1")
                    .header("proxy-authorization", "Basic x")
                    .header("x-kept", "1")
                    .body(Body::from("body"))
                    .unwrap(),
                PUBLIC_URL,
            )
            .await;
        assert_eq!(r.status(), 200);
        // The answer: the app's own cookie passes, berth's names and hop-by-hop headers don't.
        let set: Vec<&str> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set, ["theme=light; Path=/"]);
        assert!(!r.headers().contains_key("x-app-hop"));
        assert_eq!(r.headers()["x-app-kept"], "1");
        let seen: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
        assert_eq!(seen["cookie"], serde_json::json!(["theme=dark"]));
        assert_eq!(
            seen["authorization"],
            serde_json::json!([format!("token {APP_SECRET}")])
        );
        assert_eq!(seen["x-forwarded-host"], serde_json::json!([APP_HOST]));
        assert_eq!(seen["x-forwarded-proto"], serde_json::json!(["http"]));
        assert_eq!(seen["x-kept"], serde_json::json!(["1"]));
        for gone in ["x-hop", "proxy-authorization"] {
            assert!(seen.get(gone).is_none(), "{gone} reached the app");
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_app_not_listening_yet_gets_the_starting_page() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        let login = log_in(&proxy, &revocations).await;
        let r = proxy
            .handle(
                request("GET", "/")
                    .header("cookie", login)
                    .body(Body::empty())
                    .unwrap(),
                PUBLIC_URL,
            )
            .await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "2");
        assert!(text(r).await.contains("http-equiv=\"refresh\""));
    }

    #[tokio::test]
    async fn websockets_are_spliced_to_the_app_until_access_is_revoked() {
        let (app, _) = app_server().await;
        let (proxy, revocations) = proxy(app, None);
        let login = log_in(&proxy, &revocations).await;
        let at = serve_proxy(proxy).await;
        let mut req = format!("ws://{at}/ws").into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert("host", APP_HOST.parse().unwrap());
        h.insert("origin", OWN_ORIGIN.parse().unwrap());
        h.insert("cookie", login.parse().unwrap());
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(resp.status(), 101);
        ws.send(Message::text("ping")).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text("ping"));
        ws.send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::binary(vec![0u8, 1, 2, 255]));
        revocations.revoke(OWNER);
        let end = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("revoking access cuts the websocket");
        assert!(!matches!(
            end,
            Some(Ok(Message::Text(_) | Message::Binary(_)))
        ));
    }

    #[tokio::test]
    async fn requests_bodies_and_websocket_bytes_are_the_sessions_activity() {
        let (app, _) = app_server().await;
        let (proxy, revocations) = proxy(app, None);
        let get = |cookie: Option<&str>| {
            let mut r = request("GET", "/echo");
            if let Some(c) = cookie {
                r = r.header("cookie", c);
            }
            proxy.handle(r.body(Body::empty()).unwrap(), PUBLIC_URL)
        };
        // What never reaches the app is no activity.
        assert_eq!(get(None).await.status(), 401);
        let login = log_in(&proxy, &revocations).await;
        assert!(proxy.take_activity().is_empty());
        // A request that reaches the app is, and so is its body while it moves.
        let r = get(Some(&login)).await;
        assert_eq!(r.status(), 200);
        let noted = proxy.take_activity();
        assert_eq!(noted.len(), 1);
        assert_eq!(noted[0].0, SESSION);
        assert!(!text(r).await.is_empty());
        assert_eq!(proxy.take_activity().len(), 1, "the body's bytes count");

        // A websocket's bytes count with no new request.
        let at = serve_proxy(proxy.clone()).await;
        let mut req = format!("ws://{at}/ws").into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert("host", APP_HOST.parse().unwrap());
        h.insert("origin", OWN_ORIGIN.parse().unwrap());
        h.insert("cookie", login.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(proxy.take_activity().len(), 1, "the upgrade request");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            proxy.take_activity().is_empty(),
            "an open websocket that moves nothing is no traffic"
        );
        ws.send(Message::text("ping")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping"));
        let noted = proxy.take_activity();
        assert_eq!(noted.len(), 1, "websocket frames are traffic: {noted:?}");
        assert_eq!(noted[0].0, SESSION);
    }
}
