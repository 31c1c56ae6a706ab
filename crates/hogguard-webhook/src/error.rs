//! Why a delivery was rejected.

use std::fmt;

use crate::replay::ReplayStoreError;

/// Why [`Verifier::verify`](crate::Verifier::verify) rejected a delivery.
///
/// Meant for logs and metrics on the receiving side; do not send it back to the sender (the
/// `tower` layer answers every failure with the same body). Messages name headers and problems,
/// never a secret, a received signature or a computed one.
#[derive(Debug)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    MissingHeader {
        /// Name of the missing header, as the scheme spells it.
        name: String,
    },
    /// A header is present but cannot be read (repeated, too long, bad syntax).
    MalformedHeader {
        /// Name of the header, as the scheme spells it.
        name: String,
        /// What is wrong with it, in a few words.
        problem: &'static str,
    },
    /// The signed timestamp is further in the past than the tolerance allows.
    TooOld {
        /// How many seconds before "now" the timestamp lies.
        age_secs: u64,
    },
    /// The signed timestamp is further in the future than the tolerance allows.
    TooNew {
        /// How many seconds after "now" the timestamp lies.
        ahead_secs: u64,
    },
    /// The delivery verified, but it was taken before: this copy is a replay.
    Replay,
    /// The delivery verified, but a copy of it is being handled right now; once that one
    /// settles, a copy is either a replay (it was taken) or taken (it was not).
    InFlight,
    /// No signature in the request matched any active secret.
    Mismatch,
    /// The replay store could not record the delivery, so it was rejected rather than risk a
    /// replay (full, or an I/O error).
    ReplayStore(ReplayStoreError),
}

impl VerifyError {
    pub(crate) fn malformed(name: &str, problem: &'static str) -> Self {
        Self::MalformedHeader {
            name: name.to_owned(),
            problem,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader { name } => write!(f, "missing header `{name}`"),
            Self::MalformedHeader { name, problem } => {
                write!(f, "malformed header `{name}`: {problem}")
            }
            Self::TooOld { age_secs } => write!(
                f,
                "timestamp is too old ({age_secs} s in the past, beyond the tolerance)"
            ),
            Self::TooNew { ahead_secs } => write!(
                f,
                "timestamp is too new ({ahead_secs} s in the future, beyond the tolerance)"
            ),
            Self::Replay => f.write_str("delivery was already accepted once (replay)"),
            Self::InFlight => f.write_str("a copy of this delivery is being handled right now"),
            Self::Mismatch => f.write_str("no signature matched an active secret"),
            Self::ReplayStore(_) => f.write_str("replay store could not record the delivery"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReplayStore(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ReplayStoreError> for VerifyError {
    fn from(err: ReplayStoreError) -> Self {
        Self::ReplayStore(err)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use hogguard_testkit::errors::{assert_no_repeated_segment, chain};

    use super::*;
    use crate::standard::SignError;
    use crate::{BuildError, Scheme, SecretError, Verifier, WebhookSecret};

    #[test]
    fn every_error_names_each_cause_once() {
        // See: issue 15 point 1 (a cause printed twice by `{:#}`).
        let full_disk = hogguard_fs::Error::Io {
            action: "append to",
            path: "replay/seen".into(),
            source: io::ErrorKind::StorageFull.into(),
        };
        let store_failure = VerifyError::ReplayStore(ReplayStoreError::Io(full_disk.into()));
        assert_eq!(
            chain(&store_failure),
            [
                "replay store could not record the delivery",
                "replay store file could not be written",
                "cannot append to replay/seen",
                "no storage space",
            ]
        );
        let bad_secret = Verifier::new(Scheme::Standard, &[WebhookSecret::new("whsec_!")])
            .err()
            .unwrap();
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(store_failure),
            Box::new(VerifyError::ReplayStore(ReplayStoreError::Full {
                capacity: 3,
            })),
            Box::new(VerifyError::malformed("webhook-id", "id must be printable")),
            Box::new(VerifyError::MissingHeader {
                name: "webhook-signature".to_owned(),
            }),
            Box::new(VerifyError::TooOld { age_secs: 301 }),
            Box::new(VerifyError::InFlight),
            Box::new(bad_secret),
            Box::new(BuildError::InvalidHeaderName {
                name: "x sig".to_owned(),
            }),
            Box::new(SignError::Secret(SecretError::Empty)),
            Box::new(SignError::InvalidMessageId),
        ];
        for error in &errors {
            assert_no_repeated_segment(error.as_ref());
        }
    }
}
