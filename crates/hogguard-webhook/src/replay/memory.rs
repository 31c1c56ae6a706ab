//! An in-memory replay store, for a single process that may forget on restart.

use std::sync::Mutex;

use super::{Insertion, ReplayStore, ReplayStoreError, SeenKeys, lock, validate_key};

/// A bounded in-memory [`ReplayStore`].
///
/// Keys live until their `keep_until` passes; expired keys are swept when the store is full. A
/// full store of unexpired keys refuses new deliveries ([`ReplayStoreError::Full`]) instead of
/// evicting, so the replay window never reopens silently. Everything is forgotten on restart: use
/// `FileReplayStore` (feature `file-store`) where a restart must not reopen the window.
#[derive(Debug)]
pub struct MemoryReplayStore {
    seen: Mutex<SeenKeys>,
}

impl MemoryReplayStore {
    /// Makes an empty store that holds at most `capacity` unexpired keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(SeenKeys::new(capacity)),
        }
    }

    /// Returns how many keys are held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Returns whether the store holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryReplayStore {
    /// A store with [`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY).
    fn default() -> Self {
        Self::new(super::DEFAULT_CAPACITY)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert_if_absent(
        &self,
        key: &str,
        now: u64,
        keep_until: u64,
    ) -> Result<Insertion, ReplayStoreError> {
        validate_key(key)?;
        let mut seen = lock(&self.seen);
        if seen.is_live(key, now) {
            return Ok(Insertion::AlreadyPresent);
        }
        seen.make_room(key, now)?;
        seen.insert(key, keep_until);
        Ok(Insertion::Inserted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_insert_is_a_replay_until_expiry() {
        let store = MemoryReplayStore::new(10);
        assert_eq!(
            store.insert_if_absent("k", 100, 700).ok(),
            Some(Insertion::Inserted)
        );
        assert_eq!(
            store.insert_if_absent("k", 700, 1300).ok(),
            Some(Insertion::AlreadyPresent)
        );
        assert_eq!(
            store.insert_if_absent("k", 701, 1301).ok(),
            Some(Insertion::Inserted)
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn full_store_refuses_rather_than_forgets() {
        let store = MemoryReplayStore::new(2);
        store.insert_if_absent("a", 100, 700).unwrap();
        store.insert_if_absent("b", 100, 700).unwrap();
        assert!(matches!(
            store.insert_if_absent("c", 100, 700),
            Err(ReplayStoreError::Full { capacity: 2 })
        ));
        // The held keys are still remembered.
        assert_eq!(
            store.insert_if_absent("a", 200, 800).ok(),
            Some(Insertion::AlreadyPresent)
        );
        // Once they expire, there is room again.
        assert_eq!(
            store.insert_if_absent("c", 701, 1301).ok(),
            Some(Insertion::Inserted)
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn invalid_keys_are_refused() {
        let store = MemoryReplayStore::default();
        assert!(matches!(
            store.insert_if_absent("has space", 0, 1),
            Err(ReplayStoreError::InvalidKey)
        ));
        assert!(store.is_empty());
    }
}
