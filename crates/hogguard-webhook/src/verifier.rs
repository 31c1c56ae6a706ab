//! The verifier: one scheme, a set of active secrets, a tolerance, a clock and a replay store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::VerifyError;
use crate::headers::{Headers, is_valid_name};
use crate::replay::{ReplayStore, ReplayStoreError, Reservation};
use crate::secret::{HmacKey, KeyEncoding, SecretError, WebhookSecret};
use crate::signature::{Candidates, SignedContent};
use crate::{github, hex, standard, stripe};

/// How far a signed timestamp may lie from "now", in either direction, unless configured
/// otherwise: 5 minutes, as every Standard Webhooks and Stripe reference library uses.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A webhook signature scheme: which headers carry what, and how the secret becomes a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`); see
    /// [`standard`](crate::standard).
    Standard,
    /// Stripe (`Stripe-Signature: t=…,v1=…`); see [`stripe`](crate::stripe).
    Stripe,
    /// GitHub (`X-Hub-Signature-256: sha256=<hex>`); see [`github`](crate::github).
    GitHub,
    /// Hex HMAC-SHA256 of the body in the named header, `sha256=` prefix optional; see
    /// [`hex`](crate::hex).
    Hex {
        /// Name of the header carrying the signature (case does not matter). It must be a valid
        /// HTTP header name; [`Verifier::new`] refuses others.
        header: String,
    },
}

impl Scheme {
    /// The hex scheme with the signature in header `header`.
    pub fn hex(header: impl Into<String>) -> Self {
        Self::Hex {
            header: header.into(),
        }
    }

    /// A short lowercase name for logs and configuration: `standard`, `stripe`, `github`, `hex`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Stripe => "stripe",
            Self::GitHub => "github",
            Self::Hex { .. } => "hex",
        }
    }

    /// Whether the scheme signs a timestamp, which tolerance checks and replay protection need.
    pub fn has_signed_timestamp(&self) -> bool {
        matches!(self, Self::Standard | Self::Stripe)
    }

    fn key_encoding(&self) -> KeyEncoding {
        match self {
            Self::Standard => KeyEncoding::Base64,
            Self::Stripe => KeyEncoding::StripeText,
            Self::GitHub | Self::Hex { .. } => KeyEncoding::Text,
        }
    }

    /// Reads this scheme's headers into the signed content and the offered signatures.
    fn read<'a, H: Headers + ?Sized>(
        &'a self,
        headers: &'a H,
    ) -> Result<(SignedContent<'a>, Candidates), VerifyError> {
        match self {
            Self::Standard => standard::read(headers),
            Self::Stripe => stripe::read(headers),
            Self::GitHub => hex::read(headers, github::SIGNATURE_HEADER, hex::Prefix::Required),
            Self::Hex { header } => hex::read(headers, header, hex::Prefix::Optional),
        }
    }
}

/// Checks webhook deliveries against one scheme and a set of active secrets.
///
/// Build it once at start-up (secrets are checked and turned into keys then, so a bad secret
/// fails fast) and share it; [`Verifier::verify`] takes `&self`.
///
/// - **Rotation**: give it every active secret; a delivery passes if any of them verifies it,
///   and [`Verified::secret_index`] tells which, so you can see when the old one falls silent.
/// - **Timestamps** (Standard Webhooks, Stripe): rejected when more than the tolerance (default
///   [`DEFAULT_TOLERANCE`]) before or after the [`Clock`]'s "now"; exactly at the tolerance is
///   accepted.
/// - **Replays**: with a [`ReplayStore`], a delivery taken once is refused afterwards, and a
///   copy that arrives while it is being handled is refused as in flight ([`Verifier::claim`]).
///   Keys are kept for twice the tolerance after the delivery was taken, long enough for its
///   timestamp to fail the tolerance check on its own. GitHub and hex deliveries sign no
///   timestamp: they are remembered by their body for the same window, and a copy sent after it
///   is taken again (see [`replay`](crate::replay)).
///
/// ```
/// use hogguard_webhook::{ManualClock, MemoryReplayStore, Scheme, VerifyError, Verifier, WebhookSecret, github};
///
/// let secret = WebhookSecret::new("It's a Secret to Everybody");
/// let signature = github::sign(&secret, b"Hello, World!")?;
/// assert_eq!(signature, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
///
/// let verifier = Verifier::new(Scheme::GitHub, &[secret])?;
/// let headers = [("X-Hub-Signature-256", signature.as_str())];
/// assert!(verifier.verify(&headers, b"Hello, World!").is_ok());
/// assert!(matches!(verifier.verify(&headers, b"Hello, World?"), Err(VerifyError::Mismatch)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<HmacKey>,
    tolerance_secs: u64,
    clock: Arc<dyn Clock>,
    replay_store: Option<Arc<dyn ReplayStore>>,
}

impl Verifier {
    /// Makes a verifier for `scheme` that accepts deliveries signed with any of `secrets`.
    ///
    /// Uses [`DEFAULT_TOLERANCE`], the [`SystemClock`] and no replay store; change them with the
    /// `with_*` methods.
    ///
    /// # Errors
    ///
    /// [`BuildError::Secret`] when `secrets` is empty or any secret is unusable for `scheme` (the
    /// error names the problem, not the secret), and [`BuildError::InvalidHeaderName`] when a
    /// [`Scheme::Hex`] header name is not a valid HTTP header name.
    pub fn new(scheme: Scheme, secrets: &[WebhookSecret]) -> Result<Self, BuildError> {
        // Checked now: no request can carry such a header, so every delivery would fail later as
        // "missing header".
        if let Scheme::Hex { header } = &scheme
            && !is_valid_name(header)
        {
            return Err(BuildError::InvalidHeaderName {
                name: header.clone(),
            });
        }
        if secrets.is_empty() {
            return Err(BuildError::Secret(SecretError::NoSecrets));
        }
        let encoding = scheme.key_encoding();
        let keys = secrets
            .iter()
            .map(|secret| secret.key(encoding))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuildError::Secret)?;
        Ok(Self {
            scheme,
            keys,
            tolerance_secs: DEFAULT_TOLERANCE.as_secs(),
            clock: Arc::new(SystemClock),
            replay_store: None,
        })
    }

    /// Sets how far a signed timestamp may lie from "now", in either direction (whole seconds).
    ///
    /// Taken deliveries are remembered for twice this, for schemes without a signed timestamp
    /// too.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance_secs = tolerance.as_secs();
        self
    }

    /// Sets where "now" comes from (tests and offline checks use a
    /// [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuses deliveries already taken once, and copies of one in flight, remembering them in
    /// `store`.
    ///
    /// Pass an `Arc` to share one store between verifiers.
    pub fn with_replay_store(mut self, store: impl ReplayStore + 'static) -> Self {
        self.replay_store = Some(Arc::new(store));
        self
    }

    /// Returns the scheme this verifier checks.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Returns the timestamp tolerance.
    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.tolerance_secs)
    }

    /// Checks one delivery (its headers and its raw body, exactly as received) and, with a
    /// replay store, uses it up at once.
    ///
    /// For a caller that has handled the delivery, or will before it answers. A caller that
    /// hands the delivery on and only later learns whether it was taken (a proxy, a queue) uses
    /// [`Verifier::claim`] instead, so that a failure downstream leaves the delivery open for
    /// the sender's retry.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying why the delivery was rejected.
    pub fn verify<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        Ok(self.claim(headers, body)?.commit()?)
    }

    /// Checks one delivery (its headers and its raw body, exactly as received) and, with a
    /// replay store, reserves it: a copy arriving before the returned [`Claim`] is settled is
    /// refused with [`VerifyError::InFlight`].
    ///
    /// Checks run cheapest first: headers, timestamp, signatures (in constant time), then the
    /// replay store, which is only written once everything else passed, so unauthenticated
    /// requests cannot fill it. Hand the delivery on, then [`Claim::commit`] it once it was
    /// taken, or drop the claim (or [`Claim::release`] it) when it was not.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying why the delivery was rejected.
    pub fn claim<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<Claim, VerifyError> {
        let (content, signatures) = self.scheme.read(headers)?;
        let now = self.clock.now_unix_secs();
        if let Some(timestamp) = content.timestamp() {
            self.check_timestamp(timestamp, now)?;
        }
        if signatures.is_empty() {
            return Err(VerifyError::Mismatch);
        }
        let secret_index = self
            .keys
            .iter()
            .position(|key| signatures.contains(&content.mac(key.as_bytes(), body)))
            .ok_or(VerifyError::Mismatch)?;
        let reserved = match &self.replay_store {
            // The key costs a hash of the body for most schemes: built only for a store.
            Some(store) => {
                let key = format!("{}:{}", self.scheme.name(), content.replay_key(body));
                match store.reserve(&key, now)? {
                    Reservation::Reserved => Some(ReservedKey {
                        store: Arc::clone(store),
                        clock: Arc::clone(&self.clock),
                        key,
                        // Long enough for the delivery's timestamp to fail the tolerance check on
                        // its own: at most `tolerance` ahead of the reservation, and committed
                        // later. Schemes without a signed timestamp get the same window.
                        retention_secs: self.tolerance_secs.saturating_mul(2),
                        settled: false,
                    }),
                    Reservation::InFlight => return Err(VerifyError::InFlight),
                    Reservation::Used => return Err(VerifyError::Replay),
                }
            }
            None => None,
        };
        Ok(Claim {
            verified: Verified {
                scheme: self.scheme.clone(),
                message_id: content.message_id().map(str::to_owned),
                timestamp: content.timestamp(),
                secret_index,
            },
            reserved,
        })
    }

    fn check_timestamp(&self, timestamp: u64, now: u64) -> Result<(), VerifyError> {
        if now > timestamp && now - timestamp > self.tolerance_secs {
            return Err(VerifyError::TooOld {
                age_secs: now - timestamp,
            });
        }
        if timestamp > now && timestamp - now > self.tolerance_secs {
            return Err(VerifyError::TooNew {
                ahead_secs: timestamp - now,
            });
        }
        Ok(())
    }
}

/// Why [`Verifier::new`] could not make a verifier.
///
/// Messages never contain a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No secret was given, or one is unusable for the scheme.
    Secret(SecretError),
    /// The [`Scheme::Hex`] header name is not a valid HTTP header name (RFC 9110 `token`), so no
    /// request could carry it.
    InvalidHeaderName {
        /// The name as configured.
        name: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(err) => err.fmt(f),
            Self::InvalidHeaderName { name } => {
                write!(
                    f,
                    "signature header name {name:?} is not a valid HTTP header name"
                )
            }
        }
    }
}

impl std::error::Error for BuildError {}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secrets", &self.keys.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .field("replay_store", &self.replay_store.is_some())
            .finish_non_exhaustive()
    }
}

/// Proof that a delivery passed [`Verifier::verify`]; only a successful verification makes one.
///
/// Hand it to code that must only run on authentic deliveries (the `tower` layer puts it in the
/// request extensions). It carries what the signature vouches for.
#[derive(Clone, Debug)]
#[must_use]
pub struct Verified {
    scheme: Scheme,
    message_id: Option<String>,
    timestamp: Option<u64>,
    secret_index: usize,
}

impl Verified {
    /// Returns the scheme the delivery was verified with.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Returns the sender's message id (Standard Webhooks `webhook-id`), the key for
    /// deduplicating events in the business layer; `None` for schemes without one.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// Returns the signed Unix timestamp (Standard Webhooks, Stripe); `None` for schemes without
    /// one.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// Returns the position, in the list given to [`Verifier::new`], of the first secret that
    /// verified the delivery.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

/// A verified delivery whose replay key is reserved but not yet used up, from
/// [`Verifier::claim`].
///
/// While it is held, copies of the delivery are refused with [`VerifyError::InFlight`].
/// [`Claim::commit`] uses the delivery up once it was taken; [`Claim::release`], or dropping the
/// claim (a failed or abandoned hand-off, a panic), leaves it open for the sender's retry.
/// Without a replay store, or for a scheme the store does not cover, there is nothing to
/// reserve and both are no-ops.
#[must_use = "dropping a claim releases the delivery; commit it once the delivery was taken"]
#[derive(Debug)]
pub struct Claim {
    verified: Verified,
    reserved: Option<ReservedKey>,
}

impl Claim {
    /// Returns the proof of verification.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// Uses the delivery up: from now on a copy is a [`VerifyError::Replay`].
    ///
    /// # Errors
    ///
    /// The replay store's error when it could not record the key (a full store, a failed
    /// write); the reservation is then released, so a copy would be taken again.
    pub fn commit(self) -> Result<Verified, ReplayStoreError> {
        let Self { verified, reserved } = self;
        if let Some(reserved) = reserved {
            reserved.commit()?;
        }
        Ok(verified)
    }

    /// Leaves the delivery open: the next copy is taken. Dropping the claim does the same.
    pub fn release(self) -> Verified {
        self.verified
    }
}

/// A key reserved in a replay store, released on drop unless committed.
struct ReservedKey {
    store: Arc<dyn ReplayStore>,
    clock: Arc<dyn Clock>,
    key: String,
    retention_secs: u64,
    settled: bool,
}

impl ReservedKey {
    fn commit(mut self) -> Result<(), ReplayStoreError> {
        let now = self.clock.now_unix_secs();
        let keep_until = now.saturating_add(self.retention_secs);
        self.store.commit(&self.key, now, keep_until)?;
        self.settled = true;
        Ok(())
    }
}

impl Drop for ReservedKey {
    fn drop(&mut self) {
        if !self.settled {
            self.store.release(&self.key);
        }
    }
}

impl fmt::Debug for ReservedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReservedKey")
            .field("key", &self.key)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
