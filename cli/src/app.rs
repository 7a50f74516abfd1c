//! `berth app SESSION APP --bind ADDR`: a local TCP listener whose every connection is
//! tunnelled over a websocket of its own to the app's port in the container. Before each
//! connection the gateway says where (`POST /api/v1/sessions/{id}/tunnel/{app}`): its own
//! `GET …/tunnel/{app}` (the API key as `Authorization: Bearer`), or the session node's own
//! proxy with a one-use token in the URL — the key is never sent anywhere but the gateway. Bytes travel as binary
//! frames; the local client's EOF becomes a Close frame, and the server's Close shuts the
//! local write side. One connection's failure is reported and the listener goes on, until
//! Ctrl-C.

use super::client::{api_path, Auth, Client};
use super::{config, Error, Result};
use api::session::{Session, SessionStatus};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long the websocket handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// After one direction has ended, how long the other may still take to finish.
const LINGER: Duration = Duration::from_secs(600);
/// A ping on an idle tunnel, so proxies in between do not drop it.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// The most bytes one binary frame carries.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, clap::Args)]
/// `berth app SESSION APP`.
pub struct AppArgs {
    /// Session id, name, or the start of its id
    pub session: String,
    /// The app, as the session lists it (e.g. jupyter, port-8000)
    pub app: String,
    /// Local address to listen on: HOST:PORT, or just PORT for 127.0.0.1:PORT
    /// (port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub bind: String,
}

/// `9999` → `127.0.0.1:9999`; anything else as given.
pub fn bind_addr(arg: &str) -> String {
    let a = arg.trim();
    if a.parse::<u16>().is_ok() {
        format!("127.0.0.1:{a}")
    } else {
        a.to_string()
    }
}

/// `http://host:port/prefix` → `ws://host:port/prefix`.
pub fn ws_base(http_base: &str) -> String {
    match http_base.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => match http_base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => http_base.to_string(),
        },
    }
}

/// The path of a URL (`scheme://authority/path?query` → `/path`).
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Checks that the session has the app and runs, or says why not.
pub fn check_session(v: &Session, app: &str) -> Result<()> {
    let name = &v.name;
    let status = v.status;
    let apps: Vec<&str> = v.apps.iter().map(|a| a.name.as_str()).collect();
    if !apps.contains(&app) {
        let has = if apps.is_empty() {
            "it has no apps".to_string()
        } else {
            format!("its apps: {}", apps.join(", "))
        };
        return Err(Error::Other(format!(
            "Session \"{name}\" has no app named \"{}\"; {has}.",
            app.escape_default()
        )));
    }
    if status != SessionStatus::Running {
        return Err(Error::Other(format!(
            "Session \"{name}\" is {status}, not RUNNING; its apps open once it runs."
        )));
    }
    Ok(())
}

/// Where each connection goes and with what key.
pub(crate) struct Tunnel {
    /// `POST` here says where this connection's websocket goes.
    ask: String,
    /// The gateway's own tunnel websocket, as this client reaches the gateway.
    own: String,
    key: String,
    /// To turn a refused handshake into the server's sentence.
    client: Client,
}

/// Runs `berth app`: listens locally and tunnels each connection until Ctrl-C.
pub async fn run(a: AppArgs) -> Result<()> {
    let target = config::resolve()?;
    let client = Client::new(&target.url, Auth::Key(target.key.clone()))?;
    let id = super::session::resolve(&client, &a.session).await?;
    let session: Session = client.get(&api_path(&["sessions", &id])).await?;
    check_session(&session, &a.app)?;
    let name = session.name;

    let bind = bind_addr(&a.bind);
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|e| Error::Other(format!("cannot listen on {bind}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Other(format!("cannot listen on {bind}: {e}")))?;
    let tunnel = Arc::new(Tunnel::new(client, target.key, &id, &a.app));
    println!("Forwarding {local} → {name}/{} (Ctrl-C to stop)", a.app);
    if a.app == "jupyter" {
        // Through a raw tunnel no proxy adds JupyterLab's token: hand it to the user once.
        let token: api::images::AppToken = tunnel
            .client
            .get(&api_path(&["sessions", &id, "apps", &a.app, "token"]))
            .await?;
        println!("Open http://{local}/lab?token={}", token.token);
    }

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                eprintln!("Stopped forwarding {local}.");
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let t = tunnel.clone();
                    tokio::spawn(async move {
                        if let Err(e) = t.serve(tcp).await {
                            eprintln!("berth: connection from {peer}: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: say so, breathe, go on.
                    eprintln!("berth: cannot accept a connection on {local}: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

impl Tunnel {
    /// The tunnels of session `id`'s app `app` on the server `client` talks to with `key`.
    pub(crate) fn new(client: Client, key: String, id: &str, app: &str) -> Self {
        Tunnel {
            ask: api_path(&["sessions", id, "tunnel", app]),
            own: format!(
                "{}{}",
                ws_base(client.base()),
                api_path(&["sessions", id, "tunnel", app])
            ),
            key,
            client,
        }
    }

    /// Opens this connection's websocket, or the server's sentence why not.
    async fn dial(
        &self,
    ) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>>
    {
        let at: api::images::AppUrl = self.client.post(&self.ask, &serde_json::json!({})).await?;
        // The gateway's own endpoint is dialled as this client reaches the gateway, with the
        // key; anything else is a node's proxy, with a one-use token in the URL and no key.
        let gateway = url_path(&at.url) == self.ask;
        let url = if gateway { &self.own } else { &at.url };
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Other(format!("cannot make the tunnel request: {e}")))?;
        let headers = req.headers_mut();
        if gateway {
            let bearer = HeaderValue::from_str(&format!("Bearer {}", self.key)).map_err(|_| {
                Error::Other(
                    "The API key contains characters no HTTP header can carry; run `berth login URL` again.".into(),
                )
            })?;
            headers.insert("authorization", bearer);
        }
        headers.insert(
            "user-agent",
            HeaderValue::from_static(concat!("berth-cli/", env!("CARGO_PKG_VERSION"))),
        );
        // Nagle off: interactive use sends small writes that must not wait.
        let dial = tokio_tungstenite::connect_async_with_config(req, None, true);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, dial).await {
            Err(_) => Err(Error::Other(format!(
                "the server did not open the tunnel within {} s.",
                HANDSHAKE_TIMEOUT.as_secs()
            ))),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(WsError::Http(resp))) => {
                let body = resp.body().clone().unwrap_or_default();
                Err(self.client.problem(resp.status(), resp.headers(), &body))
            }
            Ok(Err(e)) => Err(Error::Other(format!(
                "cannot open the tunnel at {}: {e}",
                self.client.base()
            ))),
        }
    }

    /// Splices one local connection with its own websocket until both directions are done.
    async fn serve(&self, tcp: TcpStream) -> Result<()> {
        let _ = tcp.set_nodelay(true);
        let (tcp_rx, tcp_tx) = tcp.into_split();
        self.splice(tcp_rx, tcp_tx).await
    }

    /// Opens one websocket and splices it with a local byte stream (a TCP connection, or
    /// stdin and stdout for `berth ssh --stdio`) until both directions are done.
    pub(crate) async fn splice<R, W>(&self, mut tcp_rx: R, mut tcp_tx: W) -> Result<()>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let ws = self.dial().await?;
        let (mut ws_tx, mut ws_rx) = ws.split();

        // Local → server: binary frames; EOF becomes a Close frame.
        let mut up = tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            let mut idle = tokio::time::interval(KEEPALIVE);
            idle.reset();
            loop {
                tokio::select! {
                    read = tcp_rx.read(&mut buf) => match read {
                        Ok(0) => break,
                        Ok(n) => {
                            idle.reset();
                            if ws_tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                                // The server ended the tunnel; the other direction says why.
                                return Up::Gone;
                            }
                        }
                        Err(e) => {
                            let _ = ws_tx.close().await;
                            return Up::Failed(format!("reading the local connection failed: {e}"));
                        }
                    },
                    _ = idle.tick() => {
                        if ws_tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                            return Up::Gone;
                        }
                    }
                }
            }
            // An empty binary frame is our EOF: the server shuts the app's input, and its
            // answer still flows back until the server closes the websocket.
            match ws_tx.send(Message::binary(Vec::new())).await {
                Ok(()) => Up::Eof,
                Err(_) => Up::Gone,
            }
        });

        // Server → local: binary frames; the server's Close shuts the local write side. The
        // stream is read on after a Close so that the reply to it goes out.
        let mut down = tokio::spawn(async move {
            let mut outcome = Down::Done;
            let mut open = true;
            while let Some(msg) = ws_rx.next().await {
                match msg {
                    // The app's EOF: pass it on, and wait for the server's Close.
                    Ok(Message::Binary(b)) if open && b.is_empty() => {
                        let _ = tcp_tx.shutdown().await;
                    }
                    Ok(Message::Binary(b)) if open => {
                        // Flushed at once: stdout (`berth ssh --stdio`) holds bytes back
                        // until asked (a TCP stream's flush does nothing).
                        let wrote = match tcp_tx.write_all(&b).await {
                            Ok(()) => tcp_tx.flush().await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = wrote {
                            outcome = Down::Failed(format!(
                                "writing to the local connection failed: {e}"
                            ));
                            break;
                        }
                    }
                    Ok(Message::Close(frame)) => {
                        open = false;
                        let _ = tcp_tx.shutdown().await;
                        if let Some(f) = frame {
                            if !matches!(f.code, CloseCode::Normal | CloseCode::Away) {
                                let why = if f.reason.is_empty() {
                                    format!("code {}", u16::from(f.code))
                                } else {
                                    f.reason.to_string()
                                };
                                outcome =
                                    Down::Failed(format!("the server ended the tunnel: {why}"));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
                    Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                        if open {
                            outcome = Down::Dropped;
                        }
                        break;
                    }
                    Err(e) => {
                        outcome = Down::Failed(format!("the tunnel broke: {e}"));
                        break;
                    }
                }
            }
            let _ = tcp_tx.shutdown().await;
            outcome
        });

        let up_end = |r: std::result::Result<Up, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Up::Failed(format!("the tunnel task failed: {e}")))
        };
        let down_end = |r: std::result::Result<Down, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Down::Failed(format!("the tunnel task failed: {e}")))
        };
        let (u, d) = tokio::select! {
            r = &mut up => {
                let u = up_end(r);
                let d = match tokio::time::timeout(LINGER, &mut down).await {
                    Ok(r) => down_end(r),
                    Err(_) => {
                        down.abort();
                        Down::Done
                    }
                };
                // After our Close the server has had everything; not waiting for its reply
                // is no failure of this connection.
                let d = match (&u, d) {
                    (Up::Eof, Down::Dropped) => Down::Done,
                    (_, d) => d,
                };
                (u, d)
            }
            r = &mut down => {
                let d = down_end(r);
                let u = match tokio::time::timeout(LINGER, &mut up).await {
                    Ok(r) => up_end(r),
                    Err(_) => {
                        up.abort();
                        Up::Gone
                    }
                };
                (u, d)
            }
        };
        match (u, d) {
            (Up::Failed(e), _) | (_, Down::Failed(e)) => Err(Error::Other(e)),
            (_, Down::Dropped) => Err(Error::Other(
                "the server dropped the tunnel without closing it.".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// How the local → server direction ended.
enum Up {
    /// The local client's EOF, passed on as an empty frame.
    Eof,
    /// The websocket was gone already.
    Gone,
    Failed(String),
}

/// How the server → local direction ended.
enum Down {
    Done,
    /// The connection ended without a closing handshake.
    Dropped,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::test_session;
    use serde_json::json;

    #[test]
    fn url_paths() {
        assert_eq!(
            url_path("ws://h:1/api/v1/sessions/x/tunnel/ssh"),
            "/api/v1/sessions/x/tunnel/ssh"
        );
        assert_eq!(url_path("wss://p.example/tunnel?token=a/b"), "/tunnel");
        assert_eq!(url_path("ws://h:1"), "");
    }

    #[test]
    fn addresses_and_urls() {
        assert_eq!(bind_addr("9999"), "127.0.0.1:9999");
        assert_eq!(bind_addr("0.0.0.0:80"), "0.0.0.0:80");
        assert_eq!(bind_addr("localhost:1"), "localhost:1");
        assert_eq!(ws_base("http://h:1/pre"), "ws://h:1/pre");
    }

    #[test]
    fn the_session_must_run_and_have_the_app() {
        let v = test_session(json!({"name": "nb", "status": "RUNNING",
            "apps": [{"name": "port-8000", "protocol": "http", "port": 8000}]}));
        assert!(check_session(&v, "port-8000").is_ok());
        assert_eq!(
            check_session(&v, "jupyter").unwrap_err().to_string(),
            "Session \"nb\" has no app named \"jupyter\"; its apps: port-8000."
        );
        let v = test_session(json!({"name": "nb", "status": "PENDING", "apps": []}));
        assert_eq!(
            check_session(&v, "x").unwrap_err().to_string(),
            "Session \"nb\" has no app named \"x\"; it has no apps."
        );
        let v = test_session(json!({"name": "nb", "status": "PENDING",
            "apps": [{"name": "x", "protocol": "http", "port": 1}]}));
        assert_eq!(
            check_session(&v, "x").unwrap_err().to_string(),
            "Session \"nb\" is PENDING, not RUNNING; its apps open once it runs."
        );
    }
}
