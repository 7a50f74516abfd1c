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
//! In the database (`login_throttle`, one row per key), so that every gateway replica counts
//! the same attempts: each count is one atomic upsert, so parallel attempts through several
//! replicas see each other too.

use crate::db::Db;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
/// Stale rows are swept once every this many attempts (of this process).
const SWEEP_EVERY: u64 = 1000;

pub struct LoginThrottle {
    db: Db,
    attempts: AtomicU64,
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
            format!("ua:{addr}|{username}"),
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

/// Now, in milliseconds since the epoch (the table's clock: replicas share it through NTP).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl LoginThrottle {
    /// The throttle over `db`'s `login_throttle` table.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            attempts: AtomicU64::new(0),
        }
    }

    /// Starts an attempt: refuses it while a key is locked, else counts it at once (locking
    /// a key that reaches its limit for the attempts after this one) and says how long to
    /// wait before checking the password.
    pub async fn begin(&self, username: &str, addr: &str) -> sqlx::Result<Verdict> {
        let now = now_ms();
        if self.attempts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            sqlx::query(
                "DELETE FROM login_throttle WHERE (locked_until IS NULL AND first_at < $1) \
                 OR locked_until < $2",
            )
            .bind(now - WINDOW.as_millis() as i64)
            .bind(now)
            .execute(&self.db)
            .await?;
        }
        let keys = keys(username, addr);
        for (key, _, _) in &keys {
            let until: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT locked_until FROM login_throttle WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.db)
                    .await?;
            if let Some((Some(until),)) = until {
                if until > now {
                    return Ok(Verdict::Locked(((until - now) as u64 / 1000).max(1)));
                }
            }
        }
        let mut delay = Duration::ZERO;
        let window_start = now - WINDOW.as_millis() as i64;
        for (key, lock_after, free) in keys {
            // One atomic count: a lapsed lock or window starts over at 1.
            let (attempts, locked_until): (i64, Option<i64>) = sqlx::query_as(
                "INSERT INTO login_throttle(key, attempts, first_at, locked_until) \
                 VALUES ($1, 1, $2, NULL) \
                 ON CONFLICT(key) DO UPDATE SET \
                   attempts = CASE WHEN login_throttle.locked_until <= $2 \
                     OR (login_throttle.locked_until IS NULL AND login_throttle.first_at < $3) \
                     THEN 1 ELSE login_throttle.attempts + 1 END, \
                   first_at = CASE WHEN login_throttle.locked_until <= $2 \
                     OR (login_throttle.locked_until IS NULL AND login_throttle.first_at < $3) \
                     THEN $2 ELSE login_throttle.first_at END, \
                   locked_until = CASE WHEN login_throttle.locked_until <= $2 THEN NULL \
                     ELSE login_throttle.locked_until END \
                 RETURNING attempts, locked_until",
            )
            .bind(&key)
            .bind(now)
            .bind(window_start)
            .fetch_one(&self.db)
            .await?;
            let attempts = attempts.max(0) as u32;
            // The count this attempt got decides, not the lock read above: attempts that
            // started together all passed that read, but each got its own number here (the
            // upsert is one atomic statement), so those past the limit are refused.
            if lock_after.is_some_and(|l| attempts > l) {
                let left = locked_until
                    .filter(|u| *u > now)
                    .map_or(LOCK.as_secs(), |u| ((u - now) as u64 / 1000).max(1));
                return Ok(Verdict::Locked(left));
            }
            // Counted at once; each attempt past the free ones waits a step longer.
            delay = delay.max((STEP * attempts.saturating_sub(free)).min(MAX_DELAY));
            if lock_after.is_some_and(|l| attempts >= l) {
                sqlx::query(
                    "UPDATE login_throttle SET locked_until = $1 \
                     WHERE key = $2 AND locked_until IS NULL",
                )
                .bind(now + LOCK.as_millis() as i64)
                .bind(&key)
                .execute(&self.db)
                .await?;
            }
        }
        Ok(Verdict::Proceed(delay))
    }

    /// The attempt started with [`LoginThrottle::begin`] was right: its count is given back
    /// and the username is forgiven at this address.
    pub async fn succeeded(&self, username: &str, addr: &str) -> sqlx::Result<()> {
        self.give_back(username, addr, true).await
    }

    /// The attempt's password was never checked (the server was busy): its count is given
    /// back.
    pub async fn abandoned(&self, username: &str, addr: &str) -> sqlx::Result<()> {
        self.give_back(username, addr, false).await
    }

    async fn give_back(&self, username: &str, addr: &str, forgive: bool) -> sqlx::Result<()> {
        for (i, (key, _, _)) in keys(username, addr).into_iter().enumerate() {
            if forgive && i == 0 {
                sqlx::query("DELETE FROM login_throttle WHERE key = $1")
                    .bind(&key)
                    .execute(&self.db)
                    .await?;
                continue;
            }
            sqlx::query(
                "UPDATE login_throttle SET attempts = attempts - 1 \
                 WHERE key = $1 AND locked_until IS NULL AND attempts > 0",
            )
            .bind(&key)
            .execute(&self.db)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proceeds(v: sqlx::Result<Verdict>) -> Duration {
        match v.expect("the throttle's table") {
            Verdict::Proceed(d) => d,
            Verdict::Locked(s) => panic!("locked for {s} s"),
        }
    }

    async fn throttle() -> (tempfile::TempDir, LoginThrottle) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        (dir, LoginThrottle::new(db))
    }

    #[tokio::test]
    async fn counts_at_start_slows_then_locks_a_username_at_one_address() {
        let (_dir, t) = throttle().await;
        for _ in 0..FREE_PER_USER_ADDRESS {
            assert!(proceeds(t.begin("bob", "1.2.3.4").await).is_zero());
        }
        assert!(proceeds(t.begin("bob", "1.2.3.4").await) > Duration::ZERO);
        // Nothing was reported as failed: starting is what counts.
        for _ in FREE_PER_USER_ADDRESS + 1..LOCK_AFTER {
            proceeds(t.begin("bob", "1.2.3.4").await);
        }
        assert!(matches!(t.begin("bob", "1.2.3.4").await, Ok(Verdict::Locked(s)) if s > 0));
        // The same username from another address, and another user from the first, go on.
        assert!(proceeds(t.begin("bob", "5.6.7.8").await).is_zero());
        proceeds(t.begin("carol", "1.2.3.4").await);
    }

    #[tokio::test]
    async fn success_gives_the_count_back() {
        let (_dir, t) = throttle().await;
        for _ in 0..LOCK_AFTER * 3 {
            proceeds(t.begin("bob", "1.2.3.4").await);
            t.succeeded("bob", "1.2.3.4").await.unwrap();
        }
        assert!(proceeds(t.begin("bob", "1.2.3.4").await).is_zero());
    }

    #[tokio::test]
    async fn many_addresses_slow_a_username_but_never_lock_it() {
        let (_dir, t) = throttle().await;
        for i in 0..200 {
            proceeds(t.begin("admin", &format!("10.0.0.{i}")).await);
        }
        let d = proceeds(t.begin("admin", "192.168.1.1").await);
        assert!(d > Duration::ZERO && d <= MAX_DELAY, "{d:?}");
    }
}
