//! What the proxy tells whoever keeps metrics: app requests with their status and latency,
//! websockets while they are open, terminal bytes. The gateway implements [`Observer`] over
//! its Prometheus registry (`gateway::metrics`) and hands it to the [`crate::AppProxy`] and
//! the [`crate::TerminalHub`]; without one, nothing is recorded ([`Observe::default`]), as in
//! `berth wsproxy` and the unit tests. The proxy never depends on a metrics library.

use std::sync::Arc;
use std::time::Duration;

/// The kinds of long-lived connection the proxy holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// A terminal's websocket.
    Terminal,
    /// An app's websocket (or other upgrade), spliced to the app.
    App,
    /// A TCP tunnel's websocket (`berth app --bind`).
    Tunnel,
}

impl SocketKind {
    pub const ALL: [SocketKind; 3] = [Self::Terminal, Self::App, Self::Tunnel];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminal => "terminal",
            Self::App => "app",
            Self::Tunnel => "tunnel",
        }
    }
}

/// Which way terminal bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the browser to the shell.
    Input,
    /// From the shell to the browser (replays included).
    Output,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

/// Receives the proxy's measurements; every method does nothing unless implemented. Calls
/// come from request and pump tasks and must not block.
pub trait Observer: Send + Sync {
    /// A request for `app` (its name as the session declares it) was answered with `status`
    /// after `elapsed` (until the answer's headers; a websocket's 101).
    fn app_request(&self, _app: &str, _status: u16, _elapsed: Duration) {}
    /// A websocket of `kind` opened.
    fn socket_opened(&self, _kind: SocketKind) {}
    /// A websocket of `kind` closed.
    fn socket_closed(&self, _kind: SocketKind) {}
    /// `bytes` of terminal traffic went `direction`.
    fn terminal_bytes(&self, _direction: Direction, _bytes: u64) {}
}

/// The observer that records nothing.
struct Nothing;

impl Observer for Nothing {}

/// A shared observer; the default records nothing.
#[derive(Clone)]
pub struct Observe(Arc<dyn Observer>);

impl Observe {
    pub fn new(observer: Arc<dyn Observer>) -> Self {
        Self(observer)
    }

    /// Counts a websocket of `kind` as open until the returned guard is dropped.
    pub fn open(&self, kind: SocketKind) -> OpenSocket {
        self.0.socket_opened(kind);
        OpenSocket {
            observe: self.clone(),
            kind,
        }
    }
}

impl Default for Observe {
    fn default() -> Self {
        Self(Arc::new(Nothing))
    }
}

impl std::ops::Deref for Observe {
    type Target = dyn Observer;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// An open websocket, counted as open while this lives (see [`Observe::open`]).
pub struct OpenSocket {
    observe: Observe,
    kind: SocketKind,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.observe.socket_closed(self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[derive(Default)]
    struct Open(AtomicI64);

    impl Observer for Open {
        fn socket_opened(&self, _: SocketKind) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn socket_closed(&self, _: SocketKind) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_socket_counts_as_open_while_its_guard_lives() {
        let open = Arc::new(Open::default());
        let observe = Observe::new(open.clone());
        let a = observe.open(SocketKind::Terminal);
        let b = observe.open(SocketKind::App);
        assert_eq!(open.0.load(Ordering::SeqCst), 2);
        drop(a);
        assert_eq!(open.0.load(Ordering::SeqCst), 1);
        drop(b);
        assert_eq!(open.0.load(Ordering::SeqCst), 0);
        // The default records nothing and does not fail.
        drop(Observe::default().open(SocketKind::Tunnel));
    }
}
