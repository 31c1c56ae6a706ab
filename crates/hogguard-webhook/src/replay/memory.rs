//! An in-memory replay store, for a single process that may forget on restart.

use std::sync::Mutex;

use super::{ReplayStore, ReplayStoreError, Reservation, SeenKeys, lock, validate_key};

/// A bounded in-memory [`ReplayStore`].
///
/// Used keys live until their `keep_until` passes; expired keys are swept when the store is full.
/// A store full of unexpired or in-flight keys refuses new deliveries
/// ([`ReplayStoreError::Full`]) instead of evicting, so the replay window never reopens silently. Everything is forgotten on restart: use
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

    /// Returns how many keys are held, in flight or used (expired ones not yet swept included).
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
    fn reserve(&self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError> {
        validate_key(key)?;
        lock(&self.seen).reserve(key, now)
    }

    fn commit(&self, key: &str, now: u64, keep_until: u64) -> Result<(), ReplayStoreError> {
        validate_key(key)?;
        lock(&self.seen).mark_used(key, now, keep_until)
    }

    fn release(&self, key: &str) {
        lock(&self.seen).release(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_key_is_used_until_it_expires() {
        let store = MemoryReplayStore::new(10);
        assert_eq!(store.reserve("k", 100).ok(), Some(Reservation::Reserved));
        store.commit("k", 100, 700).unwrap();
        assert_eq!(store.reserve("k", 700).ok(), Some(Reservation::Used));
        assert_eq!(store.reserve("k", 701).ok(), Some(Reservation::Reserved));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_reserved_key_is_in_flight_until_committed_or_released() {
        let store = MemoryReplayStore::new(10);
        assert_eq!(store.reserve("k", 100).ok(), Some(Reservation::Reserved));
        assert_eq!(store.reserve("k", 100).ok(), Some(Reservation::InFlight));
        store.release("k");
        assert!(store.is_empty());
        assert_eq!(store.reserve("k", 100).ok(), Some(Reservation::Reserved));
    }

    #[test]
    fn full_store_refuses_rather_than_forgets() {
        let store = MemoryReplayStore::new(2);
        store.commit("a", 100, 700).unwrap();
        assert_eq!(store.reserve("b", 100).ok(), Some(Reservation::Reserved));
        assert!(matches!(
            store.reserve("c", 100),
            Err(ReplayStoreError::Full { capacity: 2 })
        ));
        assert!(matches!(
            store.commit("c", 100, 700),
            Err(ReplayStoreError::Full { capacity: 2 })
        ));
        // The held keys are still remembered.
        assert_eq!(store.reserve("a", 200).ok(), Some(Reservation::Used));
        assert_eq!(store.reserve("b", 200).ok(), Some(Reservation::InFlight));
        // Once the used one expires, there is room again.
        assert_eq!(store.reserve("c", 701).ok(), Some(Reservation::Reserved));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn invalid_keys_are_refused() {
        let store = MemoryReplayStore::default();
        assert!(matches!(
            store.reserve("has space", 0),
            Err(ReplayStoreError::InvalidKey)
        ));
        assert!(matches!(
            store.commit("has space", 0, 1),
            Err(ReplayStoreError::InvalidKey)
        ));
        assert!(store.is_empty());
    }
}
