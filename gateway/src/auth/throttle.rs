//! Login throttling. An attempt is counted when it **starts** (before its password is
//! checked), so a burst of parallel attempts cannot all pass before the first failure is
//! recorded; a success or an attempt that never got its password checked gives its count back.
//!
//! Counted per `(username, client address)` and per client address, and only those lock: a
//! lock never follows a username to other addresses, so nobody can lock the admin out by
//! failing logins as "admin" from somewhere else. Per username alone (any address) failures
//! only slow attempts down, up to [`MAX_DELAY`], which bounds guessing spread over many
//! addresses without refusing the real owner.
//!
//! In memory: a restart forgives, which is acceptable for a lock measured in minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts counted within this window.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a locked key stays refused.
pub const LOCK: Duration = Duration::from_secs(15 * 60);
/// Attempts of one username from one address before it is locked there.
const LOCK_AFTER: u32 = 8;
/// Attempts from one address (any usernames) before the address is locked; several people
/// may share one address.
const ADDRESS_LOCK_AFTER: u32 = 32;
/// Attempts allowed before each further one is slowed, per kind of key.
const FREE_PER_USER_ADDRESS: u32 = 3;
const FREE_PER_ADDRESS: u32 = 12;
const FREE_PER_USER: u32 = 24;
const STEP: Duration = Duration::from_millis(250);
pub const MAX_DELAY: Duration = Duration::from_secs(2);
/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    attempts: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// What to do with a login attempt before checking the password.
#[derive(Debug)]
pub enum Verdict {
    /// Go ahead after waiting this long (the attempt is counted).
    Proceed(Duration),
    /// Refuse; the lock ends in this many seconds (the attempt is not counted).
    Locked(u64),
}

/// The keys an attempt counts against: `(key, lock after, free attempts)`; `None` never locks.
fn keys(username: &str, addr: &str) -> [(String, Option<u32>, u32); 3] {
    [
        (
            format!("ua:{addr}\0{username}"),
            Some(LOCK_AFTER),
            FREE_PER_USER_ADDRESS,
        ),
        (
            format!("a:{addr}"),
            Some(ADDRESS_LOCK_AFTER),
            FREE_PER_ADDRESS,
        ),
        (format!("u:{username}"), None, FREE_PER_USER),
    ]
}

impl LoginThrottle {
    /// Starts an attempt: refuses it while a key is locked, else counts it at once (locking
    /// a key that reaches its limit for the attempts after this one) and says how long to
    /// wait before checking the password.
    pub fn begin(&self, username: &str, addr: &str) -> Verdict {
        let now = Instant::now();
        let mut map = self.entries.lock().expect("throttle lock");
        if map.len() > SWEEP_AT {
            map.retain(|_, e| {
                now.duration_since(e.first) <= WINDOW || e.locked_until.is_some_and(|u| u > now)
            });
        }
        let keys = keys(username, addr);
        for (key, _, _) in &keys {
            let Some(e) = map.get(key).copied() else {
                continue;
            };
            match e.locked_until {
                Some(until) if until > now => {
                    return Verdict::Locked((until - now).as_secs().max(1))
                }
                Some(_) => {
                    map.remove(key);
                }
                None if now.duration_since(e.first) > WINDOW => {
                    map.remove(key);
                }
                None => {}
            }
        }
        let mut delay = Duration::ZERO;
        for (key, lock_after, free) in keys {
            let e = map.entry(key).or_insert(Entry {
                attempts: 0,
                first: now,
                locked_until: None,
            });
            // Counted at once; each attempt past the free ones waits a step longer.
            e.attempts += 1;
            delay = delay.max((STEP * e.attempts.saturating_sub(free)).min(MAX_DELAY));
            if lock_after.is_some_and(|l| e.attempts >= l) {
                e.locked_until = Some(now + LOCK);
            }
        }
        Verdict::Proceed(delay)
    }

    /// The attempt started with [`LoginThrottle::begin`] was right: its count is given back
    /// and the username is forgiven at this address.
    pub fn succeeded(&self, username: &str, addr: &str) {
        self.give_back(username, addr, true);
    }

    /// The attempt's password was never checked (the server was busy): its count is given
    /// back.
    pub fn abandoned(&self, username: &str, addr: &str) {
        self.give_back(username, addr, false);
    }

    fn give_back(&self, username: &str, addr: &str, forgive: bool) {
        let mut map = self.entries.lock().expect("throttle lock");
        for (i, (key, _, _)) in keys(username, addr).into_iter().enumerate() {
            if forgive && i == 0 {
                map.remove(&key);
                continue;
            }
            if let Some(e) = map.get_mut(&key) {
                if e.locked_until.is_none() {
                    e.attempts = e.attempts.saturating_sub(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proceeds(v: Verdict) -> Duration {
        match v {
            Verdict::Proceed(d) => d,
            Verdict::Locked(s) => panic!("locked for {s} s"),
        }
    }

    #[test]
    fn counts_at_start_slows_then_locks_a_username_at_one_address() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_PER_USER_ADDRESS {
            assert!(proceeds(t.begin("bob", "1.2.3.4")).is_zero());
        }
        assert!(proceeds(t.begin("bob", "1.2.3.4")) > Duration::ZERO);
        // Nothing was reported as failed: starting is what counts.
        for _ in FREE_PER_USER_ADDRESS + 1..LOCK_AFTER {
            proceeds(t.begin("bob", "1.2.3.4"));
        }
        assert!(matches!(t.begin("bob", "1.2.3.4"), Verdict::Locked(s) if s > 0));
        // The same username from another address, and another user from the first, go on.
        assert!(proceeds(t.begin("bob", "5.6.7.8")).is_zero());
        proceeds(t.begin("carol", "1.2.3.4"));
    }

    #[test]
    fn success_gives_the_count_back() {
        let t = LoginThrottle::default();
        for _ in 0..LOCK_AFTER * 3 {
            proceeds(t.begin("bob", "1.2.3.4"));
            t.succeeded("bob", "1.2.3.4");
        }
        assert!(proceeds(t.begin("bob", "1.2.3.4")).is_zero());
    }

    #[test]
    fn many_addresses_slow_a_username_but_never_lock_it() {
        let t = LoginThrottle::default();
        for i in 0..200 {
            proceeds(t.begin("admin", &format!("10.0.0.{i}")));
        }
        let d = proceeds(t.begin("admin", "192.168.1.1"));
        assert!(d > Duration::ZERO && d <= MAX_DELAY, "{d:?}");
    }
}
