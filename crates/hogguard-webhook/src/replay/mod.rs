//! Replay protection: remembering which deliveries were already taken.
//!
//! A signature proves who sent a delivery, not that it is the first time it arrives: anyone who
//! captured one can send it again. A [`ReplayStore`] remembers each delivery that was taken for
//! twice the tolerance, so a second copy is rejected as
//! [`VerifyError::Replay`](crate::VerifyError::Replay).
//!
//! # Taken, not merely verified
//!
//! A delivery is used up only once the receiver took it, never when it merely verified: if the
//! receiver fails (it is down, answers `5xx`, times out, or the process stops mid-request), the
//! sender's retry of the same delivery must be taken, or the delivery is lost for good. So a
//! verified delivery first *reserves* its key ([`Verifier::claim`](crate::Verifier::claim)
//! returns a [`Claim`](crate::Claim)); a copy that arrives while it is in flight is refused with
//! [`VerifyError::InFlight`](crate::VerifyError::InFlight), so concurrent copies are handled
//! exactly once; the receiver's success *commits* the key, and anything else *releases* it.
//! [`Verifier::verify`](crate::Verifier::verify) does both steps at once, for callers that
//! handle a delivery before they answer.
//!
//! # What counts as "the same delivery"
//!
//! - Standard Webhooks: the message id (`webhook-id`, or `svix-id`), as the specification
//!   asks. The id is signed, and it stays the same across a sender's retries.
//! - Stripe: the timestamp and a SHA-256 digest of the signed content. A digest rather than the
//!   received `v1` signature, because a header with several signatures could otherwise be
//!   replayed with a subset of them under a different key.
//! - GitHub and hex sign nothing but the body: a SHA-256 digest of the body. GitHub's
//!   `X-GitHub-Delivery` id is not signed, so keying on it would let anyone who captured a
//!   delivery replay it under a new id; the body digest catches that and GitHub's own
//!   redeliveries alike, and works for the many GitHub-style senders that send no such id. Two
//!   *different* deliveries with byte-identical bodies within the window count as one: a sender
//!   of these schemes should make each body unique (an event id or a time in it).
//!
//! # How long
//!
//! A taken key is kept for twice the tolerance after the delivery was taken. With a signed
//! timestamp that covers the whole time the delivery can pass the tolerance check, so a replay
//! is refused for ever. GitHub and hex deliveries sign no time: a copy sent within the window is
//! refused, a copy sent after it is taken again. Raise the tolerance to widen the window; only
//! the receiver's own deduplication (by event id) covers longer.
//!
//! # Stores
//!
//! [`MemoryReplayStore`] forgets on restart. `FileReplayStore` (feature `file-store`, the crate's
//! only file I/O) also keeps every used key in a file and reloads it, so a restart does not
//! reopen the replay window; reservations are never written, so a delivery cut off by a crash
//! is taken when it comes again. Any other [`ReplayStore`] implementation works too.
//!
//! # When the store is full
//!
//! Both stores hold a bounded number of keys, in flight or used and unexpired. When full they
//! refuse new deliveries ([`ReplayStoreError::Full`]) rather than forget a key that is still
//! needed: forgetting would quietly reopen the replay window, while refusing is loud and the
//! sender retries later.

#[cfg(feature = "file-store")]
mod file;
mod memory;

use std::collections::HashMap;
use std::fmt;
use std::io;

#[cfg(feature = "file-store")]
pub use file::{FileReplayStore, FileStoreError};
pub use memory::MemoryReplayStore;

/// How many unexpired keys a store holds by default.
///
/// At the default 300 s tolerance keys live 600 s, so this allows a sustained 160 verified
/// deliveries per second; each key costs about 100–400 bytes of memory.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Longest key a store accepts, in bytes (a scheme prefix, a timestamp and a capped message id).
pub const MAX_KEY_LEN: usize = 512;

/// A record of deliveries, consulted after a signature verified.
///
/// A delivery's key goes through two steps, so that a delivery is used up only once it was
/// really taken:
///
/// 1. [`reserve`](ReplayStore::reserve) when it verified: the key is now *in flight*, and a
///    copy arriving meanwhile is told so ([`Reservation::InFlight`]) instead of being handled a
///    second time;
/// 2. then either [`commit`](ReplayStore::commit) once the receiver took the delivery (the key
///    is *used* until `keep_until`, and every later copy is a replay), or
///    [`release`](ReplayStore::release) when it did not (the key is forgotten, so the sender's
///    retry is taken).
///
/// Implementations must be safe to share between threads, must keep every used key at least
/// until `keep_until`, and must never drop an unexpired or in-flight key to make room. A
/// persistent store records only commits: a reservation that never completed (the process died
/// mid-delivery) must not use the key up after a restart.
pub trait ReplayStore: Send + Sync {
    /// Reserves `key` unless it is in flight or used and unexpired.
    ///
    /// `now` is in Unix seconds; a used key is expired once `now > keep_until`.
    ///
    /// # Errors
    ///
    /// [`ReplayStoreError::Full`] when no room can be made without forgetting an unexpired or
    /// in-flight key, and [`ReplayStoreError::InvalidKey`] for a key that is empty, too long or
    /// not printable ASCII.
    fn reserve(&self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError>;

    /// Marks `key` used until `keep_until` (Unix seconds), whether or not it was reserved; a
    /// persistent store has recorded it durably when this returns `Ok`.
    ///
    /// # Errors
    ///
    /// As [`ReplayStore::reserve`], and [`ReplayStoreError::Io`] when a persistent store cannot
    /// write. On an error a reserved key stays reserved: release it.
    fn commit(&self, key: &str, now: u64, keep_until: u64) -> Result<(), ReplayStoreError>;

    /// Forgets a reservation of `key`; a used key stays used.
    fn release(&self, key: &str);
}

impl<S: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<S> {
    fn reserve(&self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError> {
        (**self).reserve(key, now)
    }

    fn commit(&self, key: &str, now: u64, keep_until: u64) -> Result<(), ReplayStoreError> {
        (**self).commit(key, now, keep_until)
    }

    fn release(&self, key: &str) {
        (**self).release(key);
    }
}

/// Outcome of [`ReplayStore::reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The key was free and is now in flight: handle the delivery, then commit or release.
    Reserved,
    /// A copy of the delivery is being handled right now: this one must not be handled too.
    InFlight,
    /// The delivery was taken before and its key has not expired: this copy is a replay.
    Used,
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

/// Where a key held by a store stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Reserved: a delivery with this key is being handled.
    InFlight,
    /// Committed: the delivery was taken; copies are replays until `keep_until`.
    Used { keep_until: u64 },
}

/// The bounded map of keys to their slots, shared by both stores.
#[derive(Debug)]
struct SeenKeys {
    slots: HashMap<Box<str>, Slot>,
    capacity: usize,
    /// Lower bound of every used key's `keep_until`, so a full store only sweeps when a sweep
    /// can free something.
    earliest_keep_until: u64,
}

impl SeenKeys {
    fn new(capacity: usize) -> Self {
        Self {
            slots: HashMap::new(),
            capacity,
            earliest_keep_until: u64::MAX,
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Reserves `key` if it is free (absent, or used and expired).
    fn reserve(&mut self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError> {
        match self.slots.get(key) {
            Some(Slot::InFlight) => return Ok(Reservation::InFlight),
            Some(&Slot::Used { keep_until }) if now <= keep_until => {
                return Ok(Reservation::Used);
            }
            _ => {}
        }
        self.make_room(key, now)?;
        self.slots.insert(key.into(), Slot::InFlight);
        Ok(Reservation::Reserved)
    }

    /// Marks `key` used until `keep_until`, reserved or not.
    fn mark_used(&mut self, key: &str, now: u64, keep_until: u64) -> Result<(), ReplayStoreError> {
        self.make_room(key, now)?;
        self.earliest_keep_until = self.earliest_keep_until.min(keep_until);
        self.slots.insert(key.into(), Slot::Used { keep_until });
        Ok(())
    }

    /// Forgets `key` if it is in flight.
    fn release(&mut self, key: &str) {
        if self.slots.get(key) == Some(&Slot::InFlight) {
            self.slots.remove(key);
        }
    }

    /// Ensures `key` can be inserted, sweeping expired keys if that is what it takes.
    fn make_room(&mut self, key: &str, now: u64) -> Result<(), ReplayStoreError> {
        if self.len() < self.capacity || self.slots.contains_key(key) {
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
        self.slots.retain(|_, slot| match *slot {
            Slot::InFlight => true,
            Slot::Used { keep_until } => now <= keep_until,
        });
        self.earliest_keep_until = self
            .used()
            .map(|(_, keep_until)| keep_until)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Every used key with its `keep_until`, expired ones not yet swept included.
    fn used(&self) -> impl Iterator<Item = (&str, u64)> {
        self.slots.iter().filter_map(|(key, slot)| match *slot {
            Slot::InFlight => None,
            Slot::Used { keep_until } => Some((&**key, keep_until)),
        })
    }
}

/// Locks a mutex, carrying on after a panic elsewhere: every update leaves the data consistent.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A store whose commits fail, like a file store on a full disk (for tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct FailingCommits {
    held: MemoryReplayStore,
}

#[cfg(test)]
impl FailingCommits {
    /// Whether no key is reserved.
    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
impl ReplayStore for FailingCommits {
    fn reserve(&self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError> {
        self.held.reserve(key, now)
    }

    fn commit(&self, _key: &str, _now: u64, _keep_until: u64) -> Result<(), ReplayStoreError> {
        Err(ReplayStoreError::Io(io::ErrorKind::StorageFull.into()))
    }

    fn release(&self, key: &str) {
        self.held.release(key);
    }
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
        seen.mark_used("a", 0, 10).unwrap();
        seen.mark_used("b", 0, 20).unwrap();
        assert!(matches!(
            seen.reserve("c", 10),
            Err(ReplayStoreError::Full { capacity: 2 })
        ));
        // Re-recording a held key needs no room.
        assert!(seen.mark_used("a", 10, 30).is_ok());
        assert_eq!(seen.reserve("c", 31).ok(), Some(Reservation::Reserved));
        assert_eq!(seen.reserve("a", 31).ok(), Some(Reservation::Reserved));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn in_flight_keys_are_never_swept_and_released_keys_are_free() {
        let mut seen = SeenKeys::new(2);
        assert_eq!(seen.reserve("a", 0).ok(), Some(Reservation::Reserved));
        seen.mark_used("b", 0, 1).unwrap();
        // However late it is, the reservation holds its slot; the expired key makes room.
        assert_eq!(
            seen.reserve("a", u64::MAX).ok(),
            Some(Reservation::InFlight)
        );
        assert_eq!(
            seen.reserve("c", u64::MAX).ok(),
            Some(Reservation::Reserved)
        );
        assert!(matches!(
            seen.reserve("d", u64::MAX),
            Err(ReplayStoreError::Full { capacity: 2 })
        ));
        seen.release("a");
        assert_eq!(seen.reserve("a", 5).ok(), Some(Reservation::Reserved));
        // Releasing a used key changes nothing.
        seen.mark_used("a", 5, 10).unwrap();
        seen.release("a");
        assert_eq!(seen.reserve("a", 10).ok(), Some(Reservation::Used));
    }
}
