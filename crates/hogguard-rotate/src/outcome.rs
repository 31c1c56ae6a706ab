//! What a rotation call achieved, and how old a key is.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::journal::KeyRef;
use crate::time::format_utc;

/// How a [`Rotator`](crate::Rotator) call ended when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// `--if-older-than` was given and the key is younger: nothing was done.
    NotDue {
        /// The key's age.
        age: Duration,
        /// The age it must reach.
        threshold: Duration,
    },
    /// The new key is stored and verified, the old key is retired and its slot emptied.
    Completed {
        /// The rotation's id.
        rotation_id: String,
        /// The key replaced.
        old: KeyRef,
        /// The key now in the store.
        new: KeyRef,
    },
    /// Webhook secret: the new secret is primary and the old one is still accepted until
    /// `until`; the next run after that (or `--finish`) drops it.
    GracePeriod {
        /// The rotation's id.
        rotation_id: String,
        /// The secret now primary.
        new: KeyRef,
        /// When the old secret may be dropped.
        until: SystemTime,
    },
    /// The rotation was abandoned and the store holds the old key, as before it started.
    Aborted {
        /// The rotation's id.
        rotation_id: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::NotDue { age, threshold } => write!(
                f,
                "not rotated: the key is {} days old, under the {} days asked for",
                age.as_secs() / 86_400,
                threshold.as_secs() / 86_400
            ),
            Outcome::Completed {
                rotation_id,
                old,
                new,
            } => write!(
                f,
                "rotated ({rotation_id}): {} replaces {}, which is retired",
                new.mask, old.mask
            ),
            Outcome::GracePeriod {
                rotation_id,
                new,
                until,
            } => write!(
                f,
                "rotated ({rotation_id}): {} is the primary secret; the old one is accepted until \
                 {}, then the next run (or --finish) drops it",
                new.mask,
                format_utc(*until)
            ),
            Outcome::Aborted { rotation_id } => {
                write!(
                    f,
                    "aborted ({rotation_id}): the store holds the old key again"
                )
            }
        }
    }
}

/// How old the key in the store is, and how that is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAge {
    /// The age; `None` when nothing tells it.
    pub age: Option<Duration>,
    /// Where the age comes from.
    pub source: AgeSource,
}

impl KeyAge {
    /// Whether a rotation asked for at `threshold` applies. A key of unknown age is due:
    /// hogguard never rotated it and PostHog gives no date for it.
    pub fn is_older_than(&self, threshold: Duration) -> bool {
        self.age.is_none_or(|age| age >= threshold)
    }
}

/// Where a [`KeyAge`] comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgeSource {
    /// PostHog's metadata of the key: `last_rolled_at`, or `created_at` when it was never
    /// rolled.
    PostHog {
        /// The field used.
        field: &'static str,
    },
    /// The journal of the hogguard rotation that stored the current value.
    LastRotation {
        /// That rotation's id.
        rotation_id: String,
    },
    /// Nothing tells the age.
    Unknown,
}

/// A rotation that started and is not closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenRotation {
    /// Its id.
    pub rotation_id: String,
    /// Where it stands, for people.
    pub status: String,
    /// Its journal file.
    pub journal: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_unknown_age_is_due() {
        let month = Duration::from_secs(30 * 86_400);
        let unknown = KeyAge {
            age: None,
            source: AgeSource::Unknown,
        };
        assert!(unknown.is_older_than(month));
        let young = KeyAge {
            age: Some(Duration::from_secs(86_400)),
            source: AgeSource::PostHog {
                field: "created_at",
            },
        };
        assert!(!young.is_older_than(month));
        let outcome = Outcome::NotDue {
            age: Duration::from_secs(86_400),
            threshold: month,
        };
        assert_eq!(
            outcome.to_string(),
            "not rotated: the key is 1 days old, under the 30 days asked for"
        );
    }
}
