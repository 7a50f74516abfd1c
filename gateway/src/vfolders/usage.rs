//! Folder usage without a tree walk per request: each folder's byte count is remembered for
//! [`FRESH_FOR`], computed by at most one walk at a time per folder (callers that arrive
//! meanwhile wait for that walk instead of starting their own), moved forward at once by
//! uploads that land through berth, and forgotten when berth deletes files or purges the
//! folder.
//! Writes made inside sessions show up within [`FRESH_FOR`].

use super::fs::Storage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a walked usage is used before the next request walks again.
pub const FRESH_FOR: Duration = Duration::from_secs(15);

type Slot = Arc<tokio::sync::Mutex<Option<(u64, Instant)>>>;

#[derive(Debug, Default)]
pub struct UsageCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl UsageCache {
    fn slot(&self, id: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(id.to_string()).or_default().clone()
    }

    /// The bytes in folder `id`: remembered, or walked now (one walk per folder at a time).
    pub async fn get(&self, storage: &Arc<Storage>, id: &str) -> u64 {
        let slot = self.slot(id);
        let mut held = slot.lock().await;
        if let Some((bytes, at)) = *held {
            if at.elapsed() < FRESH_FOR {
                return bytes;
            }
        }
        let (s, fid) = (storage.clone(), id.to_string());
        let bytes = tokio::task::spawn_blocking(move || s.folder(&fid).ok()?.usage().ok())
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        *held = Some((bytes, Instant::now()));
        bytes
    }

    /// `bytes` landed in folder `id` through berth.
    pub async fn add(&self, id: &str, bytes: u64) {
        let slot = self.slot(id);
        let mut held = slot.lock().await;
        if let Some((b, _)) = held.as_mut() {
            *b += bytes;
        }
    }

    /// Files left folder `id` (or it was purged): the next request walks it again.
    pub fn forget(&self, id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn walks_once_then_counts_uploads_until_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Arc::new(Storage::open(tmp.path()).unwrap());
        s.create_folder("f").unwrap();
        std::fs::write(s.folder_dir("f").join("a"), [0u8; 10]).unwrap();
        let cache = UsageCache::default();
        assert_eq!(cache.get(&s, "f").await, 10);
        // Not walked again while fresh: a file written behind berth's back is not seen yet…
        std::fs::write(s.folder_dir("f").join("b"), [0u8; 5]).unwrap();
        assert_eq!(cache.get(&s, "f").await, 10);
        // …an upload through berth is, at once…
        cache.add("f", 7).await;
        assert_eq!(cache.get(&s, "f").await, 17);
        // …and forgetting walks again.
        cache.forget("f");
        assert_eq!(cache.get(&s, "f").await, 15);
    }
}
