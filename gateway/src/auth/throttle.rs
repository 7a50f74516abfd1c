//! Failed-login throttling, per username and per client address: after a few failures each
//! further attempt is slowed, and past a limit the login is refused with 429 for a while.
//! In memory: a restart forgives, which is acceptable for a lock measured in minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures counted within this window.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a locked username or address stays refused.
pub const LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures allowed before attempts are slowed.
const FREE_FAILURES: u32 = 3;
/// Failures after which a username is locked; an address gets [`ADDRESS_FACTOR`] times more
/// (several people may share one).
const LOCK_AFTER: u32 = 8;
const ADDRESS_FACTOR: u32 = 4;
const STEP: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// What to do with a login attempt before checking the password.
pub enum Verdict {
    /// Go ahead after waiting this long.
    Proceed(Duration),
    /// Refuse; the lock ends in this many seconds.
    Locked(u64),
}

fn keys(username: &str, addr: &str) -> [(String, u32); 2] {
    [
        (format!("u:{username}"), LOCK_AFTER),
        (format!("a:{addr}"), LOCK_AFTER * ADDRESS_FACTOR),
    ]
}

impl LoginThrottle {
    pub fn check(&self, username: &str, addr: &str) -> Verdict {
        let now = Instant::now();
        let mut map = self.entries.lock().expect("throttle lock");
        let mut delay = Duration::ZERO;
        for (key, limit) in keys(username, addr) {
            let Some(e) = map.get(&key).copied() else {
                continue;
            };
            if let Some(until) = e.locked_until {
                if until > now {
                    return Verdict::Locked((until - now).as_secs().max(1));
                }
                map.remove(&key);
                continue;
            }
            if now.duration_since(e.first) > WINDOW {
                map.remove(&key);
                continue;
            }
            let over = e
                .failures
                .saturating_sub(FREE_FAILURES * limit / LOCK_AFTER);
            delay = delay.max((STEP * over).min(MAX_DELAY));
        }
        Verdict::Proceed(delay)
    }

    pub fn failed(&self, username: &str, addr: &str) {
        let now = Instant::now();
        let mut map = self.entries.lock().expect("throttle lock");
        if map.len() > 100_000 {
            map.retain(|_, e| {
                now.duration_since(e.first) <= WINDOW || e.locked_until.is_some_and(|u| u > now)
            });
        }
        for (key, limit) in keys(username, addr) {
            let e = map.entry(key).or_insert(Entry {
                failures: 0,
                first: now,
                locked_until: None,
            });
            e.failures += 1;
            if e.failures >= limit {
                e.locked_until = Some(now + LOCK);
            }
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.entries
            .lock()
            .expect("throttle lock")
            .remove(&format!("u:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slows_then_locks_a_username() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert!(matches!(t.check("bob", "1.2.3.4"), Verdict::Proceed(d) if d.is_zero()));
            t.failed("bob", "1.2.3.4");
        }
        t.failed("bob", "1.2.3.4");
        assert!(matches!(t.check("bob", "1.2.3.4"), Verdict::Proceed(d) if d > Duration::ZERO));
        for _ in 0..LOCK_AFTER {
            t.failed("bob", "5.6.7.8");
        }
        assert!(matches!(t.check("bob", "9.9.9.9"), Verdict::Locked(s) if s > 0));
        // Another user from the first address is only slowed, not locked.
        assert!(matches!(t.check("carol", "1.2.3.4"), Verdict::Proceed(_)));
        t.succeeded("carol");
    }
}
