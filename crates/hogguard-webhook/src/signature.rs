//! What gets signed, and the signatures a request offers: shared by every scheme's sign and
//! verify, so the two can never disagree about the signed bytes.

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};

use crate::encoding::{MAC_LEN, Mac, encode_hex};

/// Most signatures read from one request; more is treated as a malformed header.
///
/// Each candidate is compared against every active secret's MAC, so this caps the work one
/// request can cause. Two or three are normal during a secret rotation.
pub(crate) const MAX_SIGNATURES: usize = 16;

/// The content a scheme signs, borrowed from the request (or from the signer's arguments).
#[derive(Clone, Copy, Debug)]
pub(crate) enum SignedContent<'a> {
    /// Standard Webhooks: `{id}.{timestamp}.{body}`.
    Standard {
        id: &'a str,
        timestamp_text: &'a [u8],
        timestamp: u64,
    },
    /// Stripe: `{t}.{body}`.
    Stripe {
        timestamp_text: &'a [u8],
        timestamp: u64,
    },
    /// GitHub and hex: the body alone.
    Body,
}

impl SignedContent<'_> {
    /// HMAC-SHA256 of the signed content under `key`; the body is streamed, never copied.
    pub(crate) fn mac(&self, key: &[u8], body: &[u8]) -> Mac {
        // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
        match *self {
            Self::Standard {
                id, timestamp_text, ..
            } => {
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp_text);
                mac.update(b".");
            }
            Self::Stripe { timestamp_text, .. } => {
                mac.update(timestamp_text);
                mac.update(b".");
            }
            Self::Body => {}
        }
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The signed Unix timestamp, for schemes that have one.
    pub(crate) fn timestamp(&self) -> Option<u64> {
        match *self {
            Self::Standard { timestamp, .. } | Self::Stripe { timestamp, .. } => Some(timestamp),
            Self::Body => None,
        }
    }

    /// The sender's message id, for schemes that send one.
    pub(crate) fn message_id(&self) -> Option<&str> {
        match *self {
            Self::Standard { id, .. } => Some(id),
            Self::Stripe { .. } | Self::Body => None,
        }
    }

    /// What tells this delivery apart for the replay store, from signed values only (see
    /// [`crate::replay`] for why these); the verifier prefixes the scheme's name.
    pub(crate) fn replay_key(&self, body: &[u8]) -> String {
        match *self {
            Self::Standard { id, .. } => id.to_owned(),
            Self::Stripe {
                timestamp_text,
                timestamp,
            } => {
                let digest = Sha256::new()
                    .chain_update(timestamp_text)
                    .chain_update(b".")
                    .chain_update(body)
                    .finalize();
                format!("{timestamp}:{}", encode_hex(&digest))
            }
            Self::Body => encode_hex(&Sha256::digest(body)),
        }
    }
}

/// The well-formed signatures a request offers, decoded, in a fixed buffer (no allocation).
pub(crate) struct Candidates {
    macs: [Mac; MAX_SIGNATURES],
    len: usize,
}

impl Candidates {
    pub(crate) fn new() -> Self {
        Self {
            macs: [[0; MAC_LEN]; MAX_SIGNATURES],
            len: 0,
        }
    }

    /// Adds a signature; returns `false` (and adds nothing) when [`MAX_SIGNATURES`] are held.
    #[must_use]
    pub(crate) fn push(&mut self, mac: Mac) -> bool {
        let Some(slot) = self.macs.get_mut(self.len) else {
            return false;
        };
        *slot = mac;
        self.len += 1;
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any candidate equals `expected`, in time independent of where bytes differ.
    ///
    /// Every candidate is compared, so timing does not even reveal which one matched.
    pub(crate) fn contains(&self, expected: &Mac) -> bool {
        let mut found = Choice::from(0);
        for candidate in &self.macs[..self.len] {
            found |= candidate.ct_eq(expected);
        }
        found.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_hold_at_most_the_cap() {
        let mut candidates = Candidates::new();
        assert!(candidates.is_empty());
        for i in 0..MAX_SIGNATURES {
            assert!(candidates.push([i as u8; MAC_LEN]));
        }
        assert!(!candidates.push([0xff; MAC_LEN]));
        assert!(candidates.contains(&[3; MAC_LEN]));
        assert!(!candidates.contains(&[0xff; MAC_LEN]));
    }

    #[test]
    fn replay_keys_use_signed_values_only() {
        let standard = SignedContent::Standard {
            id: "msg_1",
            timestamp_text: b"0100",
            timestamp: 100,
        };
        assert_eq!(standard.replay_key(b"body"), "msg_1");
        let stripe = SignedContent::Stripe {
            timestamp_text: b"100",
            timestamp: 100,
        };
        let key = stripe.replay_key(b"body");
        assert!(key.starts_with("100:"));
        assert_eq!(key.len(), "100:".len() + 64);
        assert_ne!(stripe.replay_key(b"other body"), key);
        let body = SignedContent::Body.replay_key(b"body");
        assert_eq!(body.len(), 64);
        assert_ne!(SignedContent::Body.replay_key(b"other body"), body);
    }
}
