//! Password hashing with argon2id, always off the async runtime and under a bound on
//! concurrency: each hash holds argon2's memory (19 MiB with the default parameters) for its
//! whole run, so a burst of logins may use at most [`concurrency`] × that at once. The rest
//! wait their turn for up to [`WAIT`]; past that the caller answers 503 with a sentence.

use crate::error::{AppError, AppResult};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a hash waits for its turn before the request is refused.
pub const WAIT: Duration = Duration::from_secs(5);

/// Hashes that run at once: one per core, at least 2 and at most 8.
pub fn concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

static HASHING: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(concurrency())));

fn busy() -> AppError {
    AppError::new(
        api::ProblemType::Unavailable,
        "The server is busy checking other passwords; try again in a few seconds.",
    )
}

/// Runs one argon2 computation on the blocking pool once a hashing slot is free.
async fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let permit = tokio::time::timeout(WAIT, HASHING.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    // The permit goes with the work: a client that hangs up does not free the slot while
    // its hash still runs.
    tokio::task::spawn_blocking(move || {
        let out = f();
        drop(permit);
        out
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))
}

pub async fn hash(password: String) -> AppResult<String> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
    })
    .await?
    .map_err(AppError::Internal)
}

/// Verifies `password` against a stored PHC string; `None` means "no such user", and is
/// checked against a dummy hash so the time taken does not reveal which usernames exist.
///
/// # Errors
/// 503 when no hashing slot came free within [`WAIT`].
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    bounded(move || {
        let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2m6b4sZ0ZKX6ULnlcsb0hZFFQk4Ck7KbPbmN5lhQVbs";
        let (target, real) = match &stored {
            Some(s) => (s.as_str(), true),
            None => (dummy, false),
        };
        let ok = PasswordHash::new(target)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        ok && real
    })
    .await
}
