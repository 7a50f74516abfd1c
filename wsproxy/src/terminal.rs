//! Terminal handles and the websocket ↔ TTY pump.
//!
//! Flow of one connection:
//! 1. The gateway has checked the session and its owner and called [`TerminalHub::create`];
//!    the browser got a URL with the handle id and secret.
//! 2. The browser opens the websocket; [`TerminalHub::authorize`] checks the secret
//!    (constant time, by hash) and that the handle has no live connection.
//! 3. [`TerminalHub::serve`] starts the shell on first use, sizes the PTY (it starts 0×0),
//!    then runs two pumps: TTY → websocket (binary frames, with pings) and websocket → TTY
//!    (binary input, text control frames). Each pump awaits its sink before reading more,
//!    so a flood is held back by the slowest side instead of being buffered: memory stays
//!    bounded, and other terminals keep their own tasks.
//! 4. When the shell exits the client gets `{"type":"exit","code":N}`; when the socket goes,
//!    the shell is hung up and the handle is closed.

use crate::exec::ExecEndpoint;
use api::terminal::{ClientControl, ServerControl, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read size from the PTY stream; one websocket frame per read.
const CHUNK: usize = 64 * 1024;
/// Ping interval: keeps idle connections alive through proxies.
const PING_EVERY: Duration = Duration::from_secs(20);

/// Who a handle belongs to and where its shell lives.
#[derive(Debug, Clone)]
pub struct HandleInfo {
    pub session_id: String,
    pub owner_id: String,
    pub container_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandleState {
    /// Created, no connection yet.
    Fresh,
    /// A websocket is attached.
    Attached,
    /// The shell ended or the connection went; the handle is refused from now on.
    Closed,
}

struct Handle {
    info: HandleInfo,
    secret_hash: [u8; 32],
    endpoint: ExecEndpoint,
    state: Mutex<HandleState>,
}

/// All terminal handles of this process.
#[derive(Default)]
pub struct TerminalHub {
    handles: Mutex<HashMap<String, Arc<Handle>>>,
    /// Last terminal traffic per session, taken by the gateway's idle check.
    activity: Mutex<HashMap<String, SystemTime>>,
}

/// Notes traffic of one session at most once per second.
struct Toucher {
    hub: Arc<TerminalHub>,
    session_id: String,
    last: Option<Instant>,
}

impl Toucher {
    fn touch(&mut self) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(now);
        self.hub
            .activity
            .lock()
            .expect("activity lock")
            .insert(self.session_id.clone(), SystemTime::now());
    }
}

/// A handle a connection may use, obtained from [`TerminalHub::authorize`].
pub struct Authorized {
    id: String,
    handle: Arc<Handle>,
}

impl Authorized {
    pub fn info(&self) -> &HandleInfo {
        &self.handle.info
    }
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TerminalHub {
    /// Makes a handle for a shell in `info.container_id`; returns `(id, secret)`.
    pub fn create(&self, info: HandleInfo, endpoint: ExecEndpoint) -> (String, String) {
        let id = uuid::Uuid::new_v4().to_string();
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        let secret = hex::encode(b);
        let handle = Arc::new(Handle {
            info,
            secret_hash: hash(&secret),
            endpoint,
            state: Mutex::new(HandleState::Fresh),
        });
        self.handles
            .lock()
            .expect("hub lock")
            .insert(id.clone(), handle);
        (id, secret)
    }

    /// Checks a handle's secret and claims it for one connection. `user`, when the request
    /// also carried a login, must be the handle's owner. `None` for a missing, closed or busy
    /// handle, a wrong secret or another user: callers answer all alike.
    pub fn authorize(&self, id: &str, secret: &str, user: Option<&str>) -> Option<Authorized> {
        let handle = self.handles.lock().expect("hub lock").get(id).cloned()?;
        if !constant_eq(&handle.secret_hash, &hash(secret)) {
            return None;
        }
        if user.is_some_and(|u| u != handle.info.owner_id) {
            return None;
        }
        let mut st = handle.state.lock().expect("handle lock");
        if *st != HandleState::Fresh {
            return None;
        }
        *st = HandleState::Attached;
        drop(st);
        Some(Authorized {
            id: id.to_string(),
            handle,
        })
    }

    /// Forgets every handle of a session (it ended); live pumps end with their shell.
    pub fn close_session(&self, session_id: &str) {
        let mut map = self.handles.lock().expect("hub lock");
        map.retain(|_, h| h.info.session_id != session_id);
    }

    /// Sessions with terminal traffic since the last call, and when it last happened.
    pub fn take_activity(&self) -> Vec<(String, SystemTime)> {
        std::mem::take(&mut *self.activity.lock().expect("activity lock"))
            .into_iter()
            .collect()
    }

    /// Number of handles known (for tests and metrics).
    pub fn len(&self) -> usize {
        self.handles.lock().expect("hub lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(&self, id: &str) {
        if let Some(h) = self.handles.lock().expect("hub lock").remove(id) {
            *h.state.lock().expect("handle lock") = HandleState::Closed;
        }
    }

    /// Runs a claimed handle's terminal over `socket` until either side ends.
    pub async fn serve(self: Arc<Self>, auth: Authorized, socket: WebSocket) {
        let Authorized { id, handle } = auth;
        let tag = id.clone();
        let endpoint = handle.endpoint.clone();
        let container = handle.info.container_id.clone();
        let (mut ws_tx, mut ws_rx) = socket.split();
        let exec = match endpoint.start_shell(&container, &tag).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "terminal: cannot start a shell");
                let _ = ws_tx
                    .send(Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: "the shell could not be started".into(),
                    })))
                    .await;
                self.finish(&id);
                return;
            }
        };
        // The PTY starts at 0×0 until resized; the client's first resize follows.
        let _ = endpoint.resize(&exec.exec_id, 80, 24).await;
        let exec_id = exec.exec_id.clone();
        let (mut pty_rx, mut pty_tx) = exec.stream.into_split();
        let initial = exec.initial;

        // TTY → websocket, with pings; ends when the shell's output ends or the socket breaks.
        let out_endpoint = endpoint.clone();
        let out_exec = exec_id.clone();
        let mut out_touch = Toucher {
            hub: self.clone(),
            session_id: handle.info.session_id.clone(),
            last: None,
        };
        let mut out = tokio::spawn(async move {
            if !initial.is_empty() && ws_tx.send(Message::Binary(initial.into())).await.is_err() {
                return false;
            }
            let mut buf = vec![0u8; CHUNK];
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.tick().await;
            loop {
                tokio::select! {
                    n = pty_rx.read(&mut buf) => {
                        match n {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                out_touch.touch();
                                if ws_tx.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                                    return false;
                                }
                            }
                        }
                    }
                    _ = ping.tick() => {
                        if ws_tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                            return false;
                        }
                    }
                }
            }
            let code = out_endpoint.exit_code(&out_exec).await.unwrap_or(-1);
            let ctl = serde_json::to_string(&ServerControl::Exit { code }).unwrap_or_default();
            let _ = ws_tx.send(Message::Text(ctl.into())).await;
            let _ = ws_tx
                .send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "the shell exited".into(),
                })))
                .await;
            true
        });

        // websocket → TTY: input bytes and control frames.
        let in_endpoint = endpoint.clone();
        let in_exec = exec_id.clone();
        let mut in_touch = Toucher {
            hub: self.clone(),
            session_id: handle.info.session_id.clone(),
            last: None,
        };
        let mut inp = tokio::spawn(async move {
            while let Some(msg) = ws_rx.next().await {
                let Ok(msg) = msg else { break };
                match msg {
                    Message::Binary(b) => {
                        in_touch.touch();
                        if b.len() > MAX_FRAME_BYTES {
                            break;
                        }
                        if pty_tx.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    Message::Text(t) => {
                        if t.len() > MAX_FRAME_BYTES {
                            break;
                        }
                        match serde_json::from_str::<ClientControl>(&t) {
                            Ok(ctl) if ctl.validate().is_ok() => {
                                let ClientControl::Resize { cols, rows } = ctl;
                                let _ = in_endpoint.resize(&in_exec, cols, rows).await;
                            }
                            _ => tracing::debug!("terminal: ignored a malformed control frame"),
                        }
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        });

        tokio::select! {
            _ = &mut out => { inp.abort(); }
            _ = &mut inp => { out.abort(); }
        }
        endpoint.hangup(&container, &tag).await;
        self.finish(&id);
    }
}
