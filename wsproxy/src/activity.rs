//! Traffic per session, for the gateway's idle check: terminal input and output, app
//! requests, app websockets and tunnels all note it here ([`Activity`]), and the gateway
//! takes what was noted on each pass ([`Activity::take`]) and records it, one database write
//! per active session and pass, never one per request or frame.
//!
//! Noting is cheap on the hot path: a session already noted within the last
//! [`NOTE_EVERY`] is not noted again, and a long-lived stream (a websocket, a tunnel, a
//! streamed body) notes through a [`Toucher`] that skips even the lock within that time.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// At most one note per session (and per stream) in this time.
pub const NOTE_EVERY: Duration = Duration::from_secs(1);

/// The last traffic of each session since the gateway last took it.
#[derive(Default)]
pub struct Activity {
    last: Mutex<HashMap<String, SystemTime>>,
}

impl Activity {
    /// Notes traffic of `session_id` now, unless it was noted less than [`NOTE_EVERY`] ago.
    pub fn note(&self, session_id: &str) {
        self.note_at(session_id, SystemTime::now());
    }

    fn note_at(&self, session_id: &str, now: SystemTime) {
        let mut last = self.last.lock().expect("activity lock");
        match last.get_mut(session_id) {
            Some(at) => {
                if now.duration_since(*at).is_ok_and(|d| d >= NOTE_EVERY) {
                    *at = now;
                }
            }
            None => {
                last.insert(session_id.to_string(), now);
            }
        }
    }

    /// Sessions with traffic since the last call, and when it last happened (to within
    /// [`NOTE_EVERY`]); what is taken is forgotten.
    pub fn take(&self) -> Vec<(String, SystemTime)> {
        std::mem::take(&mut *self.last.lock().expect("activity lock"))
            .into_iter()
            .collect()
    }

    /// A toucher for one long-lived stream of `session_id`.
    pub fn toucher(self: &Arc<Self>, session_id: &str) -> Toucher {
        Toucher {
            activity: self.clone(),
            session_id: session_id.to_string(),
            last: None,
        }
    }
}

/// Notes the traffic of one stream of one session, at most once per [`NOTE_EVERY`]
/// (without taking the lock in between). Clones note on their own.
#[derive(Clone)]
pub struct Toucher {
    activity: Arc<Activity>,
    session_id: String,
    last: Option<Instant>,
}

impl Toucher {
    /// Bytes moved: notes the session's activity unless this stream did within
    /// [`NOTE_EVERY`].
    pub fn touch(&mut self) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < NOTE_EVERY)
        {
            return;
        }
        self.last = Some(now);
        self.activity.note(&self.session_id);
    }
}

/// A byte stream whose reads and writes of at least one byte count as its session's
/// activity (a spliced app websocket).
pub(crate) struct Touching<S> {
    inner: S,
    toucher: Toucher,
}

impl<S> Touching<S> {
    /// `inner`, noting its traffic through `toucher`.
    pub(crate) fn new(inner: S, toucher: Toucher) -> Self {
        Self { inner, toucher }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Touching<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.toucher.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Touching<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.toucher.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn notes_of_a_session_coalesce_into_one_per_second() {
        let a = Activity::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        a.note_at("s1", t0);
        // Within a second: the first time stands (no update per request).
        a.note_at("s1", t0 + Duration::from_millis(300));
        a.note_at("s1", t0 + Duration::from_millis(999));
        a.note_at("s2", t0 + Duration::from_millis(500));
        let mut got = a.take();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("s1".to_string(), t0),
                ("s2".to_string(), t0 + Duration::from_millis(500))
            ]
        );
        // Taken is forgotten; a second later moves the time on.
        assert!(a.take().is_empty());
        a.note_at("s1", t0);
        a.note_at("s1", t0 + Duration::from_millis(1_500));
        assert_eq!(
            a.take(),
            vec![("s1".to_string(), t0 + Duration::from_millis(1_500))]
        );
        // A clock that went back never moves the time backwards.
        a.note_at("s1", t0 + Duration::from_secs(5));
        a.note_at("s1", t0);
        assert_eq!(
            a.take(),
            vec![("s1".to_string(), t0 + Duration::from_secs(5))]
        );
    }

    #[test]
    fn a_toucher_notes_at_most_once_per_second() {
        let a = Arc::new(Activity::default());
        let mut t = a.toucher("s1");
        t.touch();
        assert_eq!(a.take().len(), 1);
        // Busy within the second: no note (not even the lock).
        for _ in 0..1000 {
            t.touch();
        }
        assert!(a.take().is_empty());
        // Another stream of the same session notes on its own.
        a.toucher("s1").touch();
        assert_eq!(a.take().len(), 1);
        std::thread::sleep(NOTE_EVERY);
        t.touch();
        assert_eq!(a.take().len(), 1);
    }

    #[tokio::test]
    async fn a_touching_stream_notes_bytes_both_ways_but_not_silence() {
        let a = Arc::new(Activity::default());
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut s = Touching::new(ours, a.toucher("s1"));
        s.flush().await.unwrap();
        assert!(a.take().is_empty(), "no bytes, no activity");
        s.write_all(b"out").await.unwrap();
        assert_eq!(a.take().len(), 1, "writing counts");
        let mut t = Touching::new(s.inner, a.toucher("s1"));
        theirs.write_all(b"in").await.unwrap();
        let mut buf = [0u8; 2];
        t.read_exact(&mut buf).await.unwrap();
        assert_eq!(a.take().len(), 1, "reading counts");
        drop(theirs);
        assert_eq!(t.read(&mut buf).await.unwrap(), 0);
        assert!(a.take().is_empty(), "the end of the stream is no traffic");
    }
}
