//! Webhook signature verification for hogguard: checks that a webhook delivery really comes from
//! the holder of a shared secret, is recent, and is not a replay, before anything acts on it.
//!
//! Four schemes, each with a `sign` function and verification through one [`Verifier`]:
//!
//! | Scheme | Headers | Signed content | Key |
//! |---|---|---|---|
//! | [`standard`] (Standard Webhooks, PostHog, Svix) | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (or Svix's `svix-id`, `svix-timestamp`, `svix-signature`) | `{id}.{timestamp}.{body}` | base64 after optional `whsec_` |
//! | [`stripe`] | `Stripe-Signature: t=…,v1=<hex>` | `{t}.{body}` | the whole secret text |
//! | [`github`] | `X-Hub-Signature-256: sha256=<hex>` | body | the secret text |
//! | [`hex`] | configurable, `sha256=` optional | body | the secret text |
//!
//! With its default features the crate does no I/O, needs no async runtime and depends only on
//! `hmac`, `sha2`, `subtle`, `base64` and `zeroize` (plus `getrandom` for `generate_secret()`,
//! default feature `generate`). Optional features:
//!
//! - `file-store`: `FileReplayStore`, a replay store kept in a file so that a restart does not
//!   reopen the replay window; the crate's only file I/O.
//! - `tower`: `layer::VerifyWebhookLayer` for axum and other tower servers (implies `http`).
//! - `http`: `http::HeaderMap` as a [`Headers`] source.
//!
//! # Example
//!
//! Sign a Standard Webhooks delivery and verify it, with the clock pinned so the example is
//! deterministic (the values are the Standard Webhooks reference vector):
//!
//! ```
//! use hogguard_webhook::{ManualClock, MemoryReplayStore, Scheme, Verifier, VerifyError, WebhookSecret, standard};
//!
//! let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); // hogguard:allow (the Standard Webhooks spec's public example secret)
//! let body = br#"{"test": 2432232314}"#;
//! let signature = standard::sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)?;
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let verifier = Verifier::new(Scheme::Standard, &[secret])?
//!     .with_clock(ManualClock::new(1614265330 + 10))
//!     .with_replay_store(MemoryReplayStore::default());
//! let headers = [
//!     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     ("webhook-timestamp", "1614265330"),
//!     ("webhook-signature", signature.as_str()),
//! ];
//! let verified = verifier.verify(&headers, body)?;
//! assert_eq!(verified.message_id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
//!
//! // The same delivery again is a replay; a changed body does not verify.
//! assert!(matches!(verifier.verify(&headers, body), Err(VerifyError::Replay)));
//! assert!(matches!(verifier.verify(&headers, b"{}"), Err(VerifyError::Mismatch)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design notes
//!
//! The threat: anyone on the internet can POST to the webhook endpoint, may have captured real
//! deliveries, and may probe it many times.
//!
//! - **Constant-time comparison.** A comparison that stops at the first differing byte tells a
//!   prober, through response timing, how many leading bytes of a forged signature are right,
//!   turning the endpoint into a signing oracle. Signatures are decoded to bytes and compared with
//!   `subtle`, every candidate against every active secret's MAC; length differences are a plain
//!   "no match", never a panic.
//! - **Same answer for every failure.** The `tower` layer answers every rejection with the same
//!   `401 {"error":"invalid signature"}`. Telling "too old" from "bad signature" from "replay"
//!   would tell a prober which parts of a forgery already pass. The precise [`VerifyError`] is
//!   for the operator's logs (the layer's `on_failure` hook receives it).
//! - **Fail closed when the replay store is full.** Evicting an unexpired entry to make room
//!   would silently let that delivery be replayed; refusing new deliveries is loud, and senders
//!   retry: the layer answers this case `503` with `Retry-After: 1`, since a `401` would make a
//!   sender drop a real delivery (and a copy of a delivery still in flight the same way). The
//!   store is only written after a signature verified, so an attacker without the secret can
//!   neither fill it nor see those answers.
//! - **Replays are keyed on signed values** (Standard Webhooks' message id; Stripe's timestamp
//!   with a digest of the signed content; the body's digest for GitHub and hex), and a delivery
//!   is used up only once it was taken, so a sender's retry after a failure downstream still
//!   gets through while a copy in flight is not handled twice; see [`replay`].
//! - **Strict parsing, tolerant of noise.** Headers are capped in length and signature count;
//!   a repeated header is refused (which copy was meant?); unknown signature versions and
//!   undecodable entries are skipped; signatures must be canonical base64 or 64 hex digits;
//!   timestamps must be plain decimal seconds; Standard Webhooks ids must be printable ASCII
//!   without `.`, which would make `{id}.{timestamp}.{body}` ambiguous.
//! - **Both directions of the tolerance.** Stripe's own libraries accept any future timestamp;
//!   here a timestamp more than the tolerance ahead is refused for every scheme.
//! - **Secrets** are checked once, when the [`Verifier`] is built, are wiped from memory on
//!   drop, and never appear in `Debug` output or error messages. Standard Webhooks secrets are
//!   accepted with or without the `whsec_` prefix and with or without base64 padding.
//! - **Raw bytes in, no UTF-8 requirement.** The signature covers the exact bytes received; the
//!   body is never parsed or re-serialised.
#![deny(missing_docs)]

mod clock;
mod encoding;
mod error;
mod headers;
mod secret;
mod signature;
mod verifier;

pub mod github;
pub mod hex;
#[cfg(feature = "tower")]
pub mod layer;
pub mod replay;
pub mod standard;
pub mod stripe;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::VerifyError;
pub use headers::Headers;
#[cfg(feature = "file-store")]
pub use replay::FileReplayStore;
pub use replay::{MemoryReplayStore, ReplayStore, Reservation};
#[cfg(feature = "generate")]
pub use secret::generate_secret;
pub use secret::{SECRET_PREFIX, SecretError, WebhookSecret};
pub use verifier::{BuildError, Claim, DEFAULT_TOLERANCE, Scheme, Verified, Verifier};
