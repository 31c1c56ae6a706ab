//! Replay protection: remembering which deliveries were already accepted.
//!
//! A signature proves who sent a delivery, not that it is the first time it arrives: anyone who
//! captured one can send it again within the timestamp tolerance. A [`ReplayStore`] remembers
//! each accepted delivery until its timestamp can no longer pass the tolerance check, so a second
//! copy is rejected as [`VerifyError::Replay`](crate::VerifyError::Replay).
//!
//! # What counts as "the same delivery"
//!
//! The key is built from signed values only, so an attacker cannot change it without breaking
//! the signature:
//!
//! - Standard Webhooks: `webhook-id` and `webhook-timestamp` together. A sender's retry keeps the
//!   id but gets a new timestamp and signature, so it passes: the gateway must not swallow a retry
//!   that follows its own failure. Deduplicating the *event* by `webhook-id` is the business
//!   layer's job, with [`Verified::message_id`](crate::Verified::message_id).
//! - Stripe: the timestamp and a SHA-256 digest of the signed content. A digest rather than the
//!   received `v1` signature, because a header with several signatures could otherwise be
//!   replayed with a subset of them under a different key.
//! - GitHub and hex carry no signed timestamp or id, so no store can protect them; the verifier
//!   does not consult one for those schemes.
//!
//! # Stores
//!
//! [`MemoryReplayStore`] forgets on restart. `FileReplayStore` (feature `file-store`, the crate's
//! only file I/O) also keeps every key in a file and reloads it, so a restart does not reopen the
//! replay window. Any other [`ReplayStore`] implementation works too.
//!
//! # When the store is full
//!
//! Both stores hold a bounded number of unexpired keys. When full they refuse new deliveries
//! ([`ReplayStoreError::Full`]) rather than forget a key that is still needed: forgetting would
//! quietly reopen the replay window, while refusing is loud and the sender retries later.

#[cfg(feature = "file-store")]
mod file;
mod memory;

use std::collections::HashMap;
use std::fmt;
use std::io;

#[cfg(feature = "file-store")]
pub use file::FileReplayStore;
pub use memory::MemoryReplayStore;

/// How many unexpired keys a store holds by default.
///
/// At the default 300 s tolerance keys live 600 s, so this allows a sustained 160 verified
/// deliveries per second; each key costs about 100–400 bytes of memory.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Longest key a store accepts, in bytes (a scheme prefix, a timestamp and a capped message id).
pub const MAX_KEY_LEN: usize = 512;

/// A record of accepted deliveries, consulted after a signature verified.
///
/// Implementations must be safe to share between threads, must keep every key at least until
/// `keep_until`, and must never drop an unexpired key to make room.
pub trait ReplayStore: Send + Sync {
    /// Records `key` unless it is already held and unexpired.
    ///
    /// `now` and `keep_until` are Unix seconds; a key is expired once `now > keep_until`.
    ///
    /// # Errors
    ///
    /// [`ReplayStoreError::Full`] when no room can be made without forgetting an unexpired key,
    /// [`ReplayStoreError::InvalidKey`] for a key that is empty, too long or not printable ASCII,
    /// and [`ReplayStoreError::Io`] when a persistent store cannot write.
    fn insert_if_absent(
        &self,
        key: &str,
        now: u64,
        keep_until: u64,
    ) -> Result<Insertion, ReplayStoreError>;
}

impl<S: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<S> {
    fn insert_if_absent(
        &self,
        key: &str,
        now: u64,
        keep_until: u64,
    ) -> Result<Insertion, ReplayStoreError> {
        (**self).insert_if_absent(key, now, keep_until)
    }
}

/// Outcome of [`ReplayStore::insert_if_absent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insertion {
    /// The key was new and is now recorded.
    Inserted,
    /// The key was already recorded and has not expired: the delivery is a replay.
    AlreadyPresent,
}

/// Why a replay store could not record a key.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayStoreError {
    /// Every slot holds an unexpired key.
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// The key is empty, longer than [`MAX_KEY_LEN`], or not printable ASCII without spaces.
    InvalidKey,
    /// The backing file could not be written or synced.
    Io(io::Error),
}

impl fmt::Display for ReplayStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { capacity } => write!(
                f,
                "replay store is full ({capacity} unexpired deliveries); refusing rather than forgetting one"
            ),
            Self::InvalidKey => f.write_str("replay key is empty, too long or not printable ASCII"),
            Self::Io(_) => f.write_str("replay store file could not be written"),
        }
    }
}

impl std::error::Error for ReplayStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// Checks that `key` fits the stores' line-based file format and size limit.
fn validate_key(key: &str) -> Result<(), ReplayStoreError> {
    let printable = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !printable {
        return Err(ReplayStoreError::InvalidKey);
    }
    Ok(())
}

/// The bounded map of keys to expiry times shared by both stores.
#[derive(Debug)]
struct SeenKeys {
    keep_until_by_key: HashMap<Box<str>, u64>,
    capacity: usize,
    /// Lower bound of every held `keep_until`, so a full store only sweeps when a sweep can free
    /// something.
    earliest_keep_until: u64,
}

impl SeenKeys {
    fn new(capacity: usize) -> Self {
        Self {
            keep_until_by_key: HashMap::new(),
            capacity,
            earliest_keep_until: u64::MAX,
        }
    }

    fn len(&self) -> usize {
        self.keep_until_by_key.len()
    }

    fn is_live(&self, key: &str, now: u64) -> bool {
        self.keep_until_by_key
            .get(key)
            .is_some_and(|&keep_until| now <= keep_until)
    }

    /// Ensures `key` can be inserted, sweeping expired keys if that is what it takes.
    fn make_room(&mut self, key: &str, now: u64) -> Result<(), ReplayStoreError> {
        if self.len() < self.capacity || self.keep_until_by_key.contains_key(key) {
            return Ok(());
        }
        if now > self.earliest_keep_until {
            self.remove_expired(now);
        }
        if self.len() < self.capacity {
            Ok(())
        } else {
            Err(ReplayStoreError::Full {
                capacity: self.capacity,
            })
        }
    }

    fn remove_expired(&mut self, now: u64) {
        self.keep_until_by_key
            .retain(|_, keep_until| now <= *keep_until);
        self.earliest_keep_until = self
            .keep_until_by_key
            .values()
            .copied()
            .min()
            .unwrap_or(u64::MAX);
    }

    fn insert(&mut self, key: &str, keep_until: u64) {
        self.earliest_keep_until = self.earliest_keep_until.min(keep_until);
        self.keep_until_by_key.insert(key.into(), keep_until);
    }

    #[cfg(feature = "file-store")]
    fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.keep_until_by_key
            .iter()
            .map(|(key, &keep_until)| (&**key, keep_until))
    }
}

/// Locks a mutex, carrying on after a panic elsewhere: every update leaves the data consistent.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_printable_ascii_without_spaces() {
        assert!(validate_key("standard:1614265330:msg_1").is_ok());
        for bad in ["", "a b", "a\nb", "é", &"k".repeat(MAX_KEY_LEN + 1)] {
            assert!(
                matches!(validate_key(bad), Err(ReplayStoreError::InvalidKey)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn full_map_sweeps_only_expired_keys() {
        let mut seen = SeenKeys::new(2);
        seen.insert("a", 10);
        seen.insert("b", 20);
        assert!(matches!(
            seen.make_room("c", 10),
            Err(ReplayStoreError::Full { capacity: 2 })
        ));
        // Re-recording a held key needs no room.
        assert!(seen.make_room("a", 10).is_ok());
        assert!(seen.make_room("c", 11).is_ok());
        assert!(!seen.is_live("a", 11));
        assert!(seen.is_live("b", 20));
        assert_eq!(seen.len(), 1);
    }
}
