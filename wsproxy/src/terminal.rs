//! Terminal handles, the shells behind them, and the websocket pumps.
//!
//! A **handle** names one shell (a TTY exec) and is authorised by its secret. The shell
//! outlives any one connection: its output goes into a ring buffer, and a connection reads
//! from the ring at its own offset. Flow of one handle:
//! 1. The gateway has checked the session and its owner and called [`TerminalHub::create`];
//!    the browser got a URL with the handle id and secret.
//! 2. The browser opens the websocket; [`TerminalHub::authorize`] checks the secret
//!    (constant time, by hash). A handle serves one connection at a time: a new one takes
//!    the handle over, and the one it displaces gets a Close frame [`TAKEN_OVER`] once its
//!    pumps have stopped — a browser whose network died reconnects at once, before the
//!    server has noticed that the old socket is dead (a silent drop can take many minutes).
//! 3. [`TerminalHub::serve`] starts the shell on first use and sizes the PTY (it starts
//!    0×0). A reconnect names the offset it has seen (`offset=N`): the bytes after it that
//!    are still in the ring are replayed, then `{"type":"replayed","bytes":N}` — nothing
//!    is shown twice.
//! 4. Two pumps run: ring → websocket (binary frames, pings) and websocket → PTY (input
//!    bytes, resize frames). While a connection is attached the shell's reader waits when
//!    the connection lags a whole ring behind, so a flood is held back by the slowest side:
//!    memory stays bounded and other terminals keep their own tasks.
//!    A connection from which nothing (not even a pong) came for [`DEAD_AFTER`] is dropped.
//! 5. When the socket drops, the shell keeps running for the grace period, its output
//!    still filling the ring; a reconnect picks it up. After the grace period, or when the
//!    shell exits (`{"type":"exit","code":N}`), the shell is hung up and the handle refused.
//!
//! Each handle has a supervisor task from its creation: a handle nobody dials within the
//! connect deadline is forgotten, and when the owner's access is revoked (the [`Watch`] the
//! gateway took when it checked them) the handle is closed at once — an attached connection
//! gets a Close frame, the shell is hung up, and the secret opens nothing any more.

use crate::activity::Activity;
use crate::exec::ExecEndpoint;
use crate::observe::{Direction, Observe, SocketKind};
use crate::revoke::Watch;
use api::terminal::{ClientControl, ServerControl, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Read size from the PTY stream and the largest frame sent.
const CHUNK: usize = 64 * 1024;
/// Ping interval: keeps idle connections alive through proxies.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A connection silent this long (no input, no pong to three pings) is taken as dead.
const DEAD_AFTER: Duration = Duration::from_secs(65);
/// How long a displaced connection's pumps get to say goodbye before they are cut.
const TAKEOVER_GOODBYE: Duration = Duration::from_secs(2);
/// `consumer` value when no connection is attached.
const NOBODY: u64 = u64::MAX;

/// How long shells outlive their connection and how much output they keep for a replay.
#[derive(Debug, Clone, Copy)]
pub struct TerminalConfig {
    pub grace: Duration,
    pub replay_bytes: usize,
    /// How long a handle waits for its first connection before it is forgotten.
    pub connect_deadline: Duration,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(600),
            replay_bytes: 256 * 1024,
            connect_deadline: Duration::from_secs(60),
        }
    }
}

/// Why a handle was closed, sent as the Close frame's reason to an attached connection.
const REVOKED: &str = "access to this terminal was revoked";
/// Why every terminal closes when the server stops (Close code 1001, going away).
pub const SHUTTING_DOWN: &str = "the server is shutting down";
/// Close code and reason for a connection displaced by a newer one to the same handle; a
/// client that gets it should not reconnect on its own (the other connection would lose).
pub const TAKEN_OVER_CODE: u16 = 4001;
pub const TAKEN_OVER: &str = "this terminal was opened in another connection";

/// Who a handle belongs to and where its shell lives.
#[derive(Debug, Clone)]
pub struct HandleInfo {
    pub session_id: String,
    pub owner_id: String,
    pub container_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandleState {
    /// Created, never connected.
    Fresh,
    /// A websocket is attached; the number tells attachments apart, so a displaced one
    /// does not detach its successor.
    Attached(u64),
    /// The connection went; the shell waits for a reconnect until the grace period ends.
    /// The number tells detachments apart, so an old grace timer does not end a new one.
    Detached(u64),
    /// The shell ended or the grace period passed; the handle is refused from now on.
    Closed,
}

/// The recent output of a shell: the last `cap` bytes and the count of all bytes so far.
struct Ring {
    data: VecDeque<u8>,
    cap: usize,
    /// Bytes produced since the shell started; the ring holds `[total - data.len(), total)`.
    total: u64,
    /// The shell's exit code, once it ended.
    exit: Option<i64>,
}

impl Ring {
    fn push(&mut self, bytes: &[u8]) {
        self.data.extend(bytes);
        let over = self.data.len().saturating_sub(self.cap);
        self.data.drain(..over);
        self.total += bytes.len() as u64;
    }

    fn start(&self) -> u64 {
        self.total - self.data.len() as u64
    }

    /// Up to `max` bytes from offset `from` (clamped into the ring).
    fn read(&self, from: u64, max: usize) -> (u64, Vec<u8>) {
        let from = from.clamp(self.start(), self.total);
        let skip = (from - self.start()) as usize;
        let bytes = self.data.iter().skip(skip).take(max).copied().collect();
        (from, bytes)
    }
}

/// A running shell and its output.
struct Shell {
    exec_id: String,
    input: tokio::sync::Mutex<tokio::io::WriteHalf<crate::exec::ExecStream>>,
    ring: Mutex<Ring>,
    /// New output or the end of the shell.
    output: Notify,
    /// The attached connection's offset (or [`NOBODY`]); the reader waits on it.
    consumer: AtomicU64,
    /// The attached connection moved on.
    consumed: Notify,
}

struct Handle {
    info: HandleInfo,
    secret_hash: [u8; 32],
    endpoint: ExecEndpoint,
    state: Mutex<HandleState>,
    shell: tokio::sync::OnceCell<Arc<Shell>>,
    /// Numbers attachments and detachments (see [`HandleState`]).
    epochs: AtomicU64,
    /// The attachment that owns the handle now; a displaced connection watches it.
    current: tokio::sync::watch::Sender<u64>,
    /// Held by the connection whose pumps run: a successor waits for its predecessor's.
    turn: tokio::sync::Mutex<()>,
    /// The owner's access as the gateway checked it when the handle was made.
    access: Watch,
    /// Set (with the reason for an attached connection) when the handle is closed.
    closed: tokio::sync::watch::Sender<Option<&'static str>>,
}

/// All terminal handles of this process.
#[derive(Default)]
pub struct TerminalHub {
    config: TerminalConfig,
    handles: Mutex<HashMap<String, Arc<Handle>>>,
    /// Terminal traffic per session, taken by the gateway's idle check.
    activity: Arc<Activity>,
    /// Open terminal websockets and terminal bytes, for metrics.
    observe: Observe,
}

/// A handle a connection may use, obtained from [`TerminalHub::authorize`].
pub struct Authorized {
    id: String,
    handle: Arc<Handle>,
    /// This connection's attachment number.
    attachment: u64,
}

impl Authorized {
    pub fn info(&self) -> &HandleInfo {
        &self.handle.info
    }
}

/// Waits until a handle is closed; the reason it was closed with.
async fn closed_reason(
    rx: &mut tokio::sync::watch::Receiver<Option<&'static str>>,
) -> &'static str {
    let why = rx
        .wait_for(Option::is_some)
        .await
        .ok()
        .map(|why| (*why).unwrap_or_default());
    match why {
        Some(why) => why,
        // The handle itself is gone: nothing will close it any more.
        None => std::future::pending().await,
    }
}

/// Waits until a newer connection has displaced attachment `mine`.
async fn displaced(rx: &mut tokio::sync::watch::Receiver<u64>, mine: u64) {
    if rx.wait_for(|now| *now != mine).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn taken_over_frame() -> Message {
    Message::Close(Some(CloseFrame {
        code: TAKEN_OVER_CODE,
        reason: TAKEN_OVER.into(),
    }))
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TerminalHub {
    pub fn new(config: TerminalConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// The hub, reporting open terminals and their bytes to `observe`.
    pub fn with_observer(mut self, observe: Observe) -> Self {
        self.observe = observe;
        self
    }

    /// Makes a handle for a shell in `info.container_id`, usable while `access` holds;
    /// returns `(id, secret)`.
    pub fn create(
        self: &Arc<Self>,
        info: HandleInfo,
        endpoint: ExecEndpoint,
        access: Watch,
    ) -> (String, String) {
        let id = uuid::Uuid::new_v4().to_string();
        let secret = crate::secret::random_hex(crate::secret::TOKEN_BYTES);
        self.adopt(&id, &secret, info, endpoint, access);
        (id, secret)
    }

    /// Makes a handle with an id and secret chosen elsewhere (a node's proxy: the gateway
    /// named the handle in the token it signed, and the token is its secret). False, and
    /// nothing made, when a handle of that id exists.
    pub fn adopt(
        self: &Arc<Self>,
        id: &str,
        secret: &str,
        info: HandleInfo,
        endpoint: ExecEndpoint,
        access: Watch,
    ) -> bool {
        let id = id.to_string();
        let handle = Arc::new(Handle {
            info,
            secret_hash: hash(secret),
            endpoint,
            state: Mutex::new(HandleState::Fresh),
            shell: tokio::sync::OnceCell::new(),
            epochs: AtomicU64::new(0),
            current: tokio::sync::watch::channel(0).0,
            turn: tokio::sync::Mutex::new(()),
            access,
            closed: tokio::sync::watch::channel(None).0,
        });
        {
            let mut handles = self.handles.lock().expect("hub lock");
            if handles.contains_key(&id) {
                return false;
            }
            handles.insert(id.clone(), handle.clone());
        }
        tokio::spawn(self.clone().supervise(id, handle));
        true
    }

    /// Whether a handle of this id is open.
    pub fn contains(&self, id: &str) -> bool {
        self.handles.lock().expect("hub lock").contains_key(id)
    }

    /// Watches one handle for as long as it is open: forgets it if nobody connects within
    /// the connect deadline, and closes it when its owner's access is revoked.
    async fn supervise(self: Arc<Self>, id: String, handle: Arc<Handle>) {
        let mut closed = handle.closed.subscribe();
        let deadline = tokio::time::sleep(self.config.connect_deadline);
        tokio::pin!(deadline);
        let mut waiting_for_first = true;
        loop {
            tokio::select! {
                _ = handle.access.revoked() => {
                    if handle.access.is_shutting_down() {
                        self.finish(&id, &handle, SHUTTING_DOWN).await;
                        return;
                    }
                    tracing::info!(handle = %id, "terminal closed: its owner's access was revoked");
                    self.finish(&id, &handle, REVOKED).await;
                    return;
                }
                _ = &mut deadline, if waiting_for_first => {
                    waiting_for_first = false;
                    if *handle.state.lock().expect("handle lock") == HandleState::Fresh {
                        tracing::info!(handle = %id, "terminal handle never connected; forgotten");
                        self.finish(&id, &handle, "the terminal was never connected").await;
                        return;
                    }
                }
                _ = closed_reason(&mut closed) => return,
            }
        }
    }

    /// Checks a handle's secret and claims it for one connection, displacing an attached
    /// one. `user`, when the request also carried a login, must be the handle's owner.
    /// `None` for a missing or closed handle, a wrong secret or another user: callers
    /// answer all alike.
    pub fn authorize(&self, id: &str, secret: &str, user: Option<&str>) -> Option<Authorized> {
        let handle = self.handles.lock().expect("hub lock").get(id).cloned()?;
        if !constant_eq(&handle.secret_hash, &hash(secret)) {
            return None;
        }
        if user.is_some_and(|u| u != handle.info.owner_id) || handle.access.is_revoked() {
            return None;
        }
        // A shell that exited spends its handle at once, before the connection that saw the
        // exit has finished it (a client may dial again the moment it reads the exit frame).
        let exited = handle
            .shell
            .get()
            .is_some_and(|sh| sh.ring.lock().expect("ring lock").exit.is_some());
        let mut st = handle.state.lock().expect("handle lock");
        if *st == HandleState::Closed || exited {
            return None;
        }
        let attachment = handle.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        *st = HandleState::Attached(attachment);
        handle.current.send_replace(attachment);
        drop(st);
        Some(Authorized {
            id: id.to_string(),
            handle,
            attachment,
        })
    }

    /// Forgets every handle of a session (it ended); their shells end with the container.
    pub fn close_session(&self, session_id: &str) {
        let mut map = self.handles.lock().expect("hub lock");
        map.retain(|_, h| {
            let keep = h.info.session_id != session_id;
            if !keep {
                *h.state.lock().expect("handle lock") = HandleState::Closed;
                h.closed.send_replace(Some("the session ended"));
            }
            keep
        });
    }

    /// The server is stopping: closes every terminal (attached connections get a Close
    /// frame 1001, going away) and hangs their shells up.
    pub async fn close_all(&self) {
        let all: Vec<(String, Arc<Handle>)> =
            self.handles.lock().expect("hub lock").drain().collect();
        for (id, handle) in all {
            self.finish(&id, &handle, SHUTTING_DOWN).await;
        }
    }

    /// Sessions with terminal traffic since the last call, and when it last happened.
    pub fn take_activity(&self) -> Vec<(String, SystemTime)> {
        self.activity.take()
    }

    /// Number of handles known (for tests and metrics).
    pub fn len(&self) -> usize {
        self.handles.lock().expect("hub lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hangs the shell up (if one was started) and refuses the handle from now on; an
    /// attached connection is closed with `why`. Only the first call does anything.
    async fn finish(&self, id: &str, handle: &Handle, why: &'static str) {
        self.handles.lock().expect("hub lock").remove(id);
        let was = std::mem::replace(
            &mut *handle.state.lock().expect("handle lock"),
            HandleState::Closed,
        );
        if handle.closed.send_replace(Some(why)).is_some() {
            return;
        }
        // A handle never connected has no shell to hang up.
        if was != HandleState::Fresh {
            handle.endpoint.hangup(&handle.info.container_id, id).await;
        }
    }

    /// Starts the shell and its output reader, once per handle.
    async fn shell(self: &Arc<Self>, id: &str, handle: &Arc<Handle>) -> anyhow::Result<Arc<Shell>> {
        let cap = self.config.replay_bytes.max(2 * CHUNK);
        handle
            .shell
            .get_or_try_init(|| async {
                let exec = handle
                    .endpoint
                    .start_shell(&handle.info.container_id, id)
                    .await?;
                // The PTY starts at 0×0 until resized; the client's first resize follows.
                let _ = handle.endpoint.resize(&exec.exec_id, 80, 24).await;
                let (mut pty_rx, pty_tx) = exec.stream.into_split();
                let mut ring = Ring {
                    data: VecDeque::with_capacity(CHUNK),
                    cap,
                    total: 0,
                    exit: None,
                };
                ring.push(&exec.initial);
                let shell = Arc::new(Shell {
                    exec_id: exec.exec_id,
                    input: tokio::sync::Mutex::new(pty_tx),
                    ring: Mutex::new(ring),
                    output: Notify::new(),
                    consumer: AtomicU64::new(NOBODY),
                    consumed: Notify::new(),
                });
                let reader = shell.clone();
                let endpoint = handle.endpoint.clone();
                let mut toucher = self.activity.toucher(&handle.info.session_id);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        // Backpressure: an attached connection a whole ring behind holds the shell.
                        loop {
                            let waiting = reader.consumed.notified();
                            let behind = {
                                let total = reader.ring.lock().expect("ring lock").total;
                                let c = reader.consumer.load(Ordering::Acquire);
                                // One more read must still fit without overwriting unsent bytes.
                                c != NOBODY && total.saturating_sub(c) + CHUNK as u64 > cap as u64
                            };
                            if !behind {
                                break;
                            }
                            waiting.await;
                        }
                        match pty_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                toucher.touch();
                                reader.ring.lock().expect("ring lock").push(&buf[..n]);
                                reader.output.notify_waiters();
                            }
                        }
                    }
                    let code = endpoint.exit_code(&reader.exec_id).await.unwrap_or(-1);
                    reader.ring.lock().expect("ring lock").exit = Some(code);
                    reader.output.notify_waiters();
                });
                Ok(shell)
            })
            .await
            .cloned()
    }

    /// Runs a claimed handle's terminal over `socket` until either side ends. `offset` is
    /// what a reconnecting client has already shown.
    pub async fn serve(self: Arc<Self>, auth: Authorized, socket: WebSocket, offset: Option<u64>) {
        let Authorized {
            id,
            handle,
            attachment,
        } = auth;
        // Counted as open from the upgrade until both pumps have stopped.
        let _open = self.observe.open(SocketKind::Terminal);
        // One connection's pumps at a time: a displaced predecessor stops first.
        let _turn = handle.turn.lock().await;
        let (mut ws_tx, mut ws_rx) = socket.split();
        if *handle.current.borrow() != attachment {
            // Displaced in turn before it started.
            let _ = tokio::time::timeout(TAKEOVER_GOODBYE, ws_tx.send(taken_over_frame())).await;
            return;
        }
        let closed_meanwhile = *handle.closed.borrow();
        if let Some(reason) = closed_meanwhile {
            // Revoked or ended between the check and now: no shell is started for it.
            let bye = Message::Close(Some(CloseFrame {
                code: 1008,
                reason: reason.into(),
            }));
            let _ = tokio::time::timeout(TAKEOVER_GOODBYE, ws_tx.send(bye)).await;
            return;
        }
        let shell = match self.shell(&id, &handle).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "terminal: cannot start a shell");
                let _ = ws_tx
                    .send(Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: "the shell could not be started".into(),
                    })))
                    .await;
                self.finish(&id, &handle, "the shell could not be started")
                    .await;
                return;
            }
        };

        // Ring → websocket: a replay first when reconnecting, then live output and pings.
        let out_shell = shell.clone();
        let mut closed = handle.closed.subscribe();
        let mut out_current = handle.current.subscribe();
        let out_observe = self.observe.clone();
        let mut out = tokio::spawn(async move {
            let mut pos = match offset {
                Some(o) => o,
                None => out_shell.ring.lock().expect("ring lock").start(),
            };
            out_shell.consumer.store(pos, Ordering::Release);
            if offset.is_some() {
                let end = out_shell.ring.lock().expect("ring lock").total;
                let mut replayed = 0u64;
                while pos < end {
                    let (from, bytes) = out_shell
                        .ring
                        .lock()
                        .expect("ring lock")
                        .read(pos, CHUNK.min((end - pos) as usize));
                    if bytes.is_empty() {
                        break;
                    }
                    pos = from + bytes.len() as u64;
                    replayed += bytes.len() as u64;
                    out_observe.terminal_bytes(Direction::Output, bytes.len() as u64);
                    if ws_tx.send(Message::Binary(bytes.into())).await.is_err() {
                        return false;
                    }
                }
                out_shell.consumer.store(pos, Ordering::Release);
                out_shell.consumed.notify_waiters();
                let ctl = serde_json::to_string(&ServerControl::Replayed { bytes: replayed })
                    .unwrap_or_default();
                if ws_tx.send(Message::Text(ctl.into())).await.is_err() {
                    return false;
                }
            }
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.tick().await;
            loop {
                // Checked before every frame, not only when the shell is quiet: a shell that
                // never stops printing must not outlast a revocation or a takeover.
                let closed_now = *closed.borrow();
                if let Some(reason) = closed_now {
                    let code = if reason == SHUTTING_DOWN { 1001 } else { 1008 };
                    let bye = Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    }));
                    let _ = tokio::time::timeout(TAKEOVER_GOODBYE, ws_tx.send(bye)).await;
                    return true;
                }
                let moved_on = *out_current.borrow() != attachment;
                if moved_on {
                    let _ = tokio::time::timeout(TAKEOVER_GOODBYE, ws_tx.send(taken_over_frame()))
                        .await;
                    return false;
                }
                let more = out_shell.output.notified();
                let (from, bytes, exit) = {
                    let ring = out_shell.ring.lock().expect("ring lock");
                    let (from, bytes) = ring.read(pos, CHUNK);
                    (from, bytes, ring.exit)
                };
                if !bytes.is_empty() {
                    pos = from + bytes.len() as u64;
                    out_observe.terminal_bytes(Direction::Output, bytes.len() as u64);
                    if ws_tx.send(Message::Binary(bytes.into())).await.is_err() {
                        return false;
                    }
                    out_shell.consumer.store(pos, Ordering::Release);
                    out_shell.consumed.notify_waiters();
                    continue;
                }
                if let Some(code) = exit {
                    let ctl =
                        serde_json::to_string(&ServerControl::Exit { code }).unwrap_or_default();
                    let _ = ws_tx.send(Message::Text(ctl.into())).await;
                    let _ = ws_tx
                        .send(Message::Close(Some(CloseFrame {
                            code: 1000,
                            reason: "the shell exited".into(),
                        })))
                        .await;
                    return true;
                }
                tokio::select! {
                    _ = more => {}
                    _ = ping.tick() => {
                        if ws_tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                            return false;
                        }
                    }
                    // Closed from outside (access revoked, session ended): say why and stop.
                    reason = closed_reason(&mut closed) => {
                        let code = if reason == SHUTTING_DOWN { 1001 } else { 1008 };
                        let _ = ws_tx
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                        return true;
                    }
                    // Displaced by a newer connection: say so, and leave the shell to it.
                    _ = displaced(&mut out_current, attachment) => {
                        let _ = ws_tx.send(taken_over_frame()).await;
                        return false;
                    }
                }
            }
        });

        // websocket → PTY: input bytes and control frames.
        let in_shell = shell.clone();
        let in_endpoint = handle.endpoint.clone();
        let mut in_touch = self.activity.toucher(&handle.info.session_id);
        let in_observe = self.observe.clone();
        let mut inp = tokio::spawn(async move {
            // Silence past DEAD_AFTER (pings go out every PING_EVERY) is a dead peer.
            while let Ok(Some(msg)) = tokio::time::timeout(DEAD_AFTER, ws_rx.next()).await {
                let Ok(msg) = msg else { break };
                match msg {
                    Message::Binary(b) => {
                        in_touch.touch();
                        in_observe.terminal_bytes(Direction::Input, b.len() as u64);
                        if b.len() > MAX_FRAME_BYTES || {
                            // Flushed: over TLS, records can wait in the session otherwise.
                            let mut input = in_shell.input.lock().await;
                            input.write_all(&b).await.is_err() || input.flush().await.is_err()
                        } {
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
                                let _ = in_endpoint.resize(&in_shell.exec_id, cols, rows).await;
                            }
                            _ => tracing::debug!("terminal: ignored a malformed control frame"),
                        }
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        });

        let mut current = handle.current.subscribe();
        let mut closing = handle.closed.subscribe();
        let shell_ended = tokio::select! {
            r = &mut out => { inp.abort(); r.unwrap_or(false) }
            _ = &mut inp => { out.abort(); false }
            // Revoked or ended: input stops at once; the output pump says why, or is cut.
            _ = closed_reason(&mut closing) => {
                inp.abort();
                if tokio::time::timeout(TAKEOVER_GOODBYE, &mut out).await.is_err() {
                    out.abort();
                }
                true
            }
            // The output pump sends the goodbye, unless a dead peer holds it in a send.
            _ = displaced(&mut current, attachment) => {
                inp.abort();
                if tokio::time::timeout(TAKEOVER_GOODBYE, &mut out).await.is_err() {
                    out.abort();
                }
                false
            }
        };
        shell.consumer.store(NOBODY, Ordering::Release);
        shell.consumed.notify_waiters();
        if shell_ended || shell.ring.lock().expect("ring lock").exit.is_some() {
            self.finish(&id, &handle, "the shell exited").await;
            return;
        }
        // Detached: the shell waits for a reconnect until the grace period ends.
        let generation = handle.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        {
            let mut st = handle.state.lock().expect("handle lock");
            if *st != HandleState::Attached(attachment) {
                return; // closed meanwhile (the session ended), or taken over
            }
            *st = HandleState::Detached(generation);
        }
        let grace = self.config.grace;
        let hub = self.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let expired =
                *handle.state.lock().expect("handle lock") == HandleState::Detached(generation);
            if expired {
                tracing::info!(handle = %id, "terminal grace period over; hanging up");
                hub.finish(&id, &handle, "the grace period ended").await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_tail_and_counts_everything() {
        let mut r = Ring {
            data: VecDeque::new(),
            cap: 4,
            total: 0,
            exit: None,
        };
        r.push(b"abc");
        r.push(b"def");
        assert_eq!(r.total, 6);
        assert_eq!(r.start(), 2);
        assert_eq!(r.read(0, 10), (2, b"cdef".to_vec()));
        assert_eq!(r.read(4, 10), (4, b"ef".to_vec()));
        assert_eq!(r.read(9, 10), (6, Vec::new()));
    }
}
