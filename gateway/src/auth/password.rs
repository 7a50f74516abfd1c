//! Password hashing with argon2id, always off the async runtime and under a bound on
//! concurrency: each hash holds argon2's memory (19 MiB with the default parameters) for its
//! whole run, so a burst of logins may use at most [`concurrency`] × that at once. The rest
//! wait their turn for up to [`WAIT`]; past that the caller answers 503 with a sentence.

use crate::error::{AppError, AppResult};
use argon2::password_hash::{
    self, rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Arc, LazyLock, Mutex};
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

/// argon2's working memory, one buffer per hashing slot, reused: a fresh allocation per
/// hash would leave freed buffers resident in every allocator arena a blocking thread used,
/// so the peak would follow the number of threads, not the number of slots.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `f` with `blocks` blocks of argon2 memory: a pooled buffer for berth's own parameters,
/// a temporary one for any other (a hash stored with other parameters).
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if blocks != Params::DEFAULT.block_count() {
        return f(&mut vec![Block::default(); blocks]);
    }
    let mut mem = MEMORY
        .lock()
        .expect("argon2 memory pool")
        .pop()
        .unwrap_or_else(|| vec![Block::default(); blocks]);
    let out = f(&mut mem);
    MEMORY.lock().expect("argon2 memory pool").push(mem);
    out
}

fn hash_blocking(password: &[u8]) -> Result<String, password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt)?;
    let params = Params::DEFAULT;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |mem| {
        Argon2::default().hash_password_into_with_memory(password, raw_salt, &mut out, mem)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    }
    .to_string())
}

fn verify_blocking(password: &[u8], stored: &str) -> Result<bool, password_hash::Error> {
    let parsed = PasswordHash::new(stored)?;
    let params = Params::try_from(&parsed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let mut raw_salt = [0u8; 64];
    let raw_salt = parsed
        .salt
        .ok_or(password_hash::Error::SaltInvalid(
            password_hash::errors::InvalidValue::Malformed,
        ))?
        .decode_b64(&mut raw_salt)?;
    let expected = parsed.hash.ok_or(password_hash::Error::Password)?;
    let mut out = vec![0u8; expected.len()];
    with_memory(params.block_count(), |mem| {
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password, raw_salt, &mut out, mem)
    })?;
    // Output's equality is constant-time.
    Ok(Output::new(&out)? == expected)
}

pub async fn hash(password: String) -> AppResult<String> {
    bounded(move || hash_blocking(password.as_bytes()))
        .await?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("argon2 hash failed: {e}")))
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
        verify_blocking(password.as_bytes(), target).unwrap_or(false) && real
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    #[test]
    fn hashes_verify_and_match_the_standard_encoding() {
        let h = hash_blocking(b"correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking(b"correct horse", &h).unwrap());
        assert!(!verify_blocking(b"wrong horse", &h).unwrap());
        // Hashes made the standard way (every stored one) verify too.
        let salt = SaltString::generate(&mut OsRng);
        let std_hash = Argon2::default()
            .hash_password(b"pw-123456", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"pw-123456", &std_hash).unwrap());
        assert!(!verify_blocking(b"pw-1234567", &std_hash).unwrap());
        // Other parameters use a temporary buffer.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"x-password", &salt)
        .unwrap()
        .to_string();
        assert!(verify_blocking(b"x-password", &small).unwrap());
    }
}
