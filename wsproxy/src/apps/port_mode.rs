//! Port mode: each open app gets a listener of its own (`SCHEME://PUBLIC_HOST:PORT`), for
//! sites without wildcard DNS. The listener binds the gateway's listen address, runs the same
//! bounded accept loop as the console's port ([`crate::listen::serve`]), and names its login
//! cookie after its port (`berth_app_PORT`), since cookies do not tell ports apart.

use super::{AppProxy, APP_COOKIE};
use axum::body::Body;
use axum::http::Request;
use std::sync::Arc;

/// How port mode's listeners are opened.
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
pub(super) type Listener = (u16, tokio::task::JoinHandle<()>);

impl AppProxy {
    /// Port mode: the port of the listener for `(session, app)`, opened on first use.
    pub(super) async fn listener(
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
        // Bounded like the console's port: a header timeout and a connection cap per listener;
        // it stops with the server ([`AppProxy::stop_listeners`]).
        let mut stopping = self.stopping.subscribe();
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        let task = tokio::spawn(async move {
            let _ = crate::listen::serve(listener, service, mode.limits, stopped).await;
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::listen::Limits;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    fn mode(range: Option<(u16, u16)>) -> PortMode {
        PortMode {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            range,
            limits: Limits {
                header_timeout: Duration::from_secs(5),
                max_connections: 8,
            },
        }
    }

    #[tokio::test]
    async fn each_app_gets_a_listener_on_the_configured_address_and_range() {
        let (app, hits) = app_server().await;
        let free = closed_port().await.port();
        let (proxy, revocations) = proxy(app, Some(mode(Some((free, free)))));
        let url = proxy
            .link(SESSION, APP, access(&revocations), PUBLIC_URL)
            .await
            .unwrap();
        // The link's origin is the public host with the listener's port.
        let prefix = format!("http://berth.test:{free}/__berth/auth?token=");
        assert!(url.starts_with(&prefix), "{url}");
        // The same app keeps its listener; no other fits in the range.
        let again = proxy
            .link(SESSION, APP, access(&revocations), PUBLIC_URL)
            .await
            .unwrap();
        assert!(again.starts_with(&prefix), "{again}");
        let full = proxy
            .link(SESSION, "other", access(&revocations), PUBLIC_URL)
            .await
            .unwrap_err();
        assert!(full.contains("No app port is free"), "{full}");

        // The listener is on 127.0.0.1:free, and logs in with a cookie named after its port.
        let client = client();
        let token = &url[prefix.len()..url.len() - "&next=/".len()];
        let r = client
            .get(
                format!("http://127.0.0.1:{free}/__berth/auth?token={token}")
                    .parse()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let set = r.headers()["set-cookie"].to_str().unwrap();
        let login = set.split(';').next().unwrap().to_string();
        assert!(login.starts_with(&format!("berth_app_{free}=")), "{login}");
        let get = |cookie: String, origin: &str| {
            let req = axum::http::Request::builder()
                .method("POST")
                .uri(format!("http://127.0.0.1:{free}/echo"))
                .header("cookie", cookie)
                .header("origin", origin)
                .body(axum::body::Body::empty())
                .unwrap();
            client.request(req)
        };
        // Its own origin is the public host and its port, not the subdomain form.
        let own = format!("http://berth.test:{free}");
        assert_eq!(get(login.clone(), OWN_ORIGIN).await.unwrap().status(), 403);
        assert!(proxy.take_activity().is_empty(), "refused: no activity");
        assert_eq!(get(login.clone(), &own).await.unwrap().status(), 200);
        // A request through a port-mode listener is the session's activity too.
        let noted = proxy.take_activity();
        assert_eq!(noted.len(), 1, "{noted:?}");
        assert_eq!(noted[0].0, SESSION);
        // The subdomain cookie name opens nothing here.
        let value = login.split_once('=').unwrap().1;
        let r = get(format!("berth_app={value}"), &own).await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

        // When the session ends its listener closes and the port is free again.
        proxy.forget_session(SESSION);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpListener::bind(("127.0.0.1", free))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the listener stayed open"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn without_a_range_the_system_picks_the_port_on_the_configured_address() {
        // 127.0.0.2 is loopback too: a listener on it is not reachable on 127.0.0.1.
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let (proxy, revocations) = proxy(closed_port().await, Some(PortMode { ip, ..mode(None) }));
        let a = proxy
            .link(SESSION, APP, access(&revocations), PUBLIC_URL)
            .await
            .unwrap();
        let b = proxy
            .link(SESSION, "other", access(&revocations), PUBLIC_URL)
            .await
            .unwrap();
        let port = |u: &str| -> u16 {
            let rest = u.strip_prefix("http://berth.test:").unwrap();
            rest.split('/').next().unwrap().parse().unwrap()
        };
        assert_ne!(port(&a), port(&b));
        tokio::net::TcpStream::connect((ip, port(&a)))
            .await
            .expect("the listener accepts on its address");
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port(&a)))
                .await
                .is_err(),
            "the listener binds only its address"
        );
    }

    #[tokio::test]
    async fn when_the_server_stops_the_app_listeners_stop_accepting() {
        let (proxy, revocations) = proxy(closed_port().await, Some(mode(None)));
        let url = proxy
            .link(SESSION, APP, access(&revocations), PUBLIC_URL)
            .await
            .unwrap();
        let port: u16 = url
            .strip_prefix("http://berth.test:")
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the listener accepts while the server runs");
        proxy.stop_listeners();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the app listener still accepts after the server stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
