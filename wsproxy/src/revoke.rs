//! Revocation: the one signal that ends everything a user holds open when their access goes
//! (account disabled, role changed, password reset by an administrator or changed by the
//! user).
//!
//! Every authorisation is taken at a **generation** of this counter, read *before* the
//! credential is checked against the database ([`Revocations::now`]). Whoever revokes commits
//! the change to the database first and then calls [`Revocations::revoke`], which stamps the
//! user with a new generation. So a check that still saw the user enabled read its generation
//! before that stamp, and a [`Watch`] taken at that generation sees the revocation — there is
//! no window between "checked" and "watching". Long-lived things (terminal handles and their
//! connections, tunnels, app logins and their websockets, event streams) hold a [`Watch`] and
//! end when it fires; they never ask the database again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The revocation counter and the generation at which each user was last revoked.
pub struct Revocations {
    generation: watch::Sender<u64>,
    /// User id → the generation of their latest revocation.
    revoked: Mutex<HashMap<String, u64>>,
    /// The server is stopping: every watch has fired, whoever it is about.
    shutting_down: AtomicBool,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            generation: watch::channel(0).0,
            revoked: Mutex::default(),
            shutting_down: AtomicBool::new(false),
        }
    }
}

impl Revocations {
    /// The current generation; read it before checking a credential.
    pub fn now(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Ends every [`Watch`] of `user_id` taken before now. Call after the database change
    /// that takes the access away has been committed.
    pub fn revoke(&self, user_id: &str) {
        let mut revoked = self.revoked.lock().expect("revocation lock");
        let next = self.now() + 1;
        revoked.insert(user_id.to_string(), next);
        self.generation.send_replace(next);
    }

    /// The server is stopping: ends every [`Watch`], now and later taken, so everything
    /// long-lived (event streams, app websockets, tunnels, terminals) lets go.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let _lock = self.revoked.lock().expect("revocation lock");
        self.generation.send_modify(|g| *g += 1);
    }

    /// True once [`Revocations::shut_down`] was called: what ends now ends because the server
    /// is going away (a websocket's Close code 1001), not because access was taken.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// A watch over `user_id`'s access as authorised at generation `since`.
    pub fn watch(self: &Arc<Self>, user_id: &str, since: u64) -> Watch {
        Watch {
            hub: self.clone(),
            user_id: user_id.into(),
            since,
            rx: self.generation.subscribe(),
        }
    }

    fn revoked_after(&self, user_id: &str, since: u64) -> bool {
        self.is_shutting_down()
            || self
                .revoked
                .lock()
                .expect("revocation lock")
                .get(user_id)
                .is_some_and(|&g| g > since)
    }
}

/// One user's access as authorised at one generation.
#[derive(Clone)]
pub struct Watch {
    hub: Arc<Revocations>,
    user_id: Arc<str>,
    since: u64,
    rx: watch::Receiver<u64>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("user_id", &self.user_id)
            .field("since", &self.since)
            .finish()
    }
}

impl Watch {
    /// The user this watch is about.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// True once the server is shutting down (rather than the access revoked).
    pub fn is_shutting_down(&self) -> bool {
        self.hub.is_shutting_down()
    }

    /// True once the user's access was revoked after this watch's generation, or the server
    /// is shutting down.
    pub fn is_revoked(&self) -> bool {
        self.hub.revoked_after(&self.user_id, self.since)
    }

    /// Resolves when the user's access is revoked (at once if it already was). Cancel-safe.
    pub async fn revoked(&self) {
        let mut rx = self.rx.clone();
        loop {
            if self.is_revoked() {
                return;
            }
            if rx.changed().await.is_err() {
                // The hub is gone (the process is ending): nothing will be revoked any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutting_down_ends_every_watch() {
        let hub = Arc::new(Revocations::default());
        let alice = hub.watch("alice", hub.now());
        let waiting = {
            let a = alice.clone();
            tokio::spawn(async move { a.revoked().await })
        };
        assert!(!alice.is_revoked() && !alice.is_shutting_down());
        hub.shut_down();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
            .await
            .expect("the watch fires")
            .unwrap();
        assert!(alice.is_revoked() && alice.is_shutting_down());
        assert!(
            hub.watch("bob", hub.now()).is_revoked(),
            "later watches too"
        );
    }

    #[tokio::test]
    async fn a_watch_sees_only_later_revocations_of_its_user() {
        let hub = Arc::new(Revocations::default());
        let before = hub.now();
        let alice = hub.watch("alice", before);
        let bob = hub.watch("bob", before);
        assert!(!alice.is_revoked());
        let waiter = {
            let a = alice.clone();
            tokio::spawn(async move { a.revoked().await })
        };
        hub.revoke("alice");
        waiter.await.unwrap();
        assert!(alice.is_revoked());
        assert!(!bob.is_revoked());
        // Authorised again after the revocation: a fresh generation is unaffected.
        let again = hub.watch("alice", hub.now());
        assert!(!again.is_revoked());
        // A check that read its generation before the revocation is revoked even if its
        // watch is made afterwards.
        let late = hub.watch("alice", before);
        assert!(late.is_revoked());
        tokio::time::timeout(std::time::Duration::from_secs(1), late.revoked())
            .await
            .expect("resolves at once");
    }
}
