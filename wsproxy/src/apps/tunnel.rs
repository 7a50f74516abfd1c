//! The TCP tunnel: a TCP app's bytes over a websocket (`berth app … --bind`), for apps that
//! speak no HTTP. The gateway authorises the websocket (the owner's session, a RUNNING app);
//! this end connects to the app's published port and relays.
//!
//! Frames: binary frames carry bytes both ways; an **empty** binary frame ends one direction
//! (a half-close), never data. The proxy sends Close once both directions have ended; a Close
//! from the client ends it all; revoking the owner's access cuts both connections at once.
//! Bytes either way are the session's activity (for the idle timeout).

use super::CONNECT_TIMEOUT;
use crate::activity::Toucher;
use crate::revoke::Watch;
use std::net::SocketAddr;
use std::time::Duration;

/// Splices a websocket and a TCP connection to `addr` (a TCP app tunnel) until both ends
/// are done. Binary frames carry bytes; an **empty binary frame** is the end of one
/// direction (a half-close), so a client can shut its side and still read the reply. The
/// proxy sends Close once both directions have ended; a Close from the client ends it all.
/// When the owner's `access` is revoked (or the server stops) the client gets a Close frame
/// (1008, or 1001 going away) and both connections are cut. Bytes either way count as the
/// session's activity through `activity` (see [`crate::AppProxy::toucher`]).
pub async fn tunnel(
    socket: axum::extract::ws::WebSocket,
    addr: SocketAddr,
    access: Watch,
    activity: Toucher,
) {
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
    let up_access = access.clone();
    let mut up_touch = activity.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut app_eof = false;
        loop {
            tokio::select! {
                // Cut from outside: says why (1001 going away when the server stops).
                _ = up_access.revoked() => {
                    let (code, reason) = if up_access.is_shutting_down() {
                        (1001, "the server is shutting down")
                    } else {
                        (1008, "access to this tunnel was revoked")
                    };
                    let close = axum::extract::ws::CloseFrame { code, reason: reason.into() };
                    let _ = ws_tx.send(Message::Close(Some(close))).await;
                    return;
                }
                r = tcp_rx.read(&mut buf), if !app_eof => match r {
                    Ok(0) | Err(_) => {
                        app_eof = true;
                        if ws_tx.send(Message::Binary(Vec::new().into())).await.is_err() {
                            return;
                        }
                    }
                    Ok(n) => {
                        up_touch.touch();
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
    let mut down_touch = activity;
    let down = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            if matches!(&msg, Message::Binary(b) if !b.is_empty()) {
                down_touch.touch();
            }
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
    let revoked = tokio::select! {
        _ = async {
            let _ = (&mut up).await;
            // The client answers our Close (or already closed); don't wait for it forever.
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut down).await;
        } => false,
        _ = access.revoked() => true,
    };
    // The first arm may have awaited `up` to its end before the revocation won the race;
    // a finished handle must not be polled again.
    if revoked && !up.is_finished() {
        // A moment for the app → client pump to send its Close frame.
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut up).await;
    }
    // Whatever ended it, neither pump outlives the tunnel.
    up.abort();
    down.abort();
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{access, serve, OWNER};
    use super::*;
    use crate::activity::Activity;
    use crate::revoke::Revocations;
    use axum::extract::ws::WebSocketUpgrade;
    use futures_util::{SinkExt, StreamExt};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;

    /// A websocket endpoint that tunnels to `app` for session `s1`; the revocations its
    /// access comes from and the activity it notes.
    async fn tunnel_to(app: SocketAddr) -> (SocketAddr, Arc<Revocations>, Arc<Activity>) {
        let revocations = Arc::new(Revocations::default());
        let activity = Arc::new(Activity::default());
        let r = revocations.clone();
        let a = activity.clone();
        let at = serve(axum::Router::new().route(
            "/t",
            axum::routing::get(move |ws: WebSocketUpgrade| {
                let access = access(&r);
                let touch = a.toucher("s1");
                async move { ws.on_upgrade(move |socket| tunnel(socket, app, access, touch)) }
            }),
        ))
        .await;
        (at, revocations, activity)
    }

    #[tokio::test]
    async fn bytes_and_half_closes_relay_both_ways() {
        // The app reads until the client's EOF, then answers and closes its side.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(b"got:").await.unwrap();
            s.write_all(&got).await.unwrap();
        });
        let (at, _revocations, activity) = tunnel_to(app).await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{at}/t"))
            .await
            .unwrap();
        assert!(activity.take().is_empty(), "an open tunnel is no traffic");
        ws.send(Message::binary(b"hello ".to_vec())).await.unwrap();
        ws.send(Message::binary(vec![0u8, 255])).await.unwrap();
        ws.send(Message::binary(Vec::new())).await.unwrap();
        let mut reply = Vec::new();
        loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Binary(b) if b.is_empty() => break,
                Message::Binary(b) => reply.extend_from_slice(&b),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(reply, b"got:hello \x00\xff");
        let noted = activity.take();
        assert_eq!(
            noted.len(),
            1,
            "the tunnel's bytes are the session's activity"
        );
        assert_eq!(noted[0].0, "s1");
        // Both directions ended: the proxy closes.
        assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn an_app_not_listening_closes_the_tunnel_with_a_reason() {
        let app = super::super::test_support::closed_port().await;
        let (at, _revocations, _) = tunnel_to(app).await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{at}/t"))
            .await
            .unwrap();
        match ws.next().await {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1011);
                assert_eq!(f.reason.as_str(), "the app is not listening");
            }
            other => panic!("expected a Close, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn revoking_access_cuts_both_ends() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = l.local_addr().unwrap();
        let (app_end_tx, app_end_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"hi").await.unwrap();
            // Reads until the proxy drops the connection.
            let mut buf = [0u8; 16];
            while s.read(&mut buf).await.unwrap_or(0) > 0 {}
            let _ = app_end_tx.send(());
        });
        let (at, revocations, _) = tunnel_to(app).await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{at}/t"))
            .await
            .unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(b"hi".to_vec())
        );
        revocations.revoke(OWNER);
        let limit = std::time::Duration::from_secs(10);
        tokio::time::timeout(limit, app_end_rx)
            .await
            .expect("the app's connection is cut")
            .unwrap();
        let end = tokio::time::timeout(limit, ws.next())
            .await
            .expect("the websocket ends");
        assert!(!matches!(end, Some(Ok(Message::Binary(_)))));
    }
}
