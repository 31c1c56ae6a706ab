//! hogguard's PostHog API client: it tells whether a found credential is live (in whichever
//! cloud region it belongs to), reports leaked ones so PostHog rolls them, manages project
//! secret API keys, reads the activity log and sends audit events to capture.
//!
//! ```
//! use hogguard_posthog::{ClientConfig, Deployment, Evidence, Hosts, KeyStatus, Verifier};
//! use hogguard_secret::Secret;
//! use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, UserSpec};
//!
//! // A PostHog stand-in on 127.0.0.1 plays a self-hosted instance.
//! let hog = FakeHog::start();
//! let user = hog.add_user(UserSpec::new("ops@acme.test"));
//! let key = hog.add_personal_key(user.id, PersonalKeySpec::new("ci").scopes(["project:read"]));
//!
//! // The binary resolves hosts with `Hosts::resolve(&overrides, &from_toml)`.
//! let hosts = Hosts::new(hog.base_url())?;
//! let verifier = Verifier::new(Deployment::of(&hosts), &ClientConfig::default());
//! let statuses = verifier.verify_all(&[Secret::new(key.value), Secret::new("phx_Gone1234567890abcdefgh")]);
//!
//! let KeyStatus::Live(live) = &statuses[0] else { panic!("{:?}", statuses[0]) };
//! let Evidence::PersonalKey(info) = &live.evidence else { panic!("{live:?}") };
//! assert_eq!(info.scopes, ["project:read"]);
//! assert_eq!(statuses[1], KeyStatus::Invalid);
//! # Ok::<(), hogguard_posthog::Error>(())
//! ```
//!
//! # What is where
//!
//! - [`Hosts`] and [`HostSettings`]: the private-API and capture hosts, the caller's overrides
//!   (hogguard's `POSTHOG_HOST` / `POSTHOG_INGEST_HOST`) before `hogguard.toml`; the crate
//!   never reads the environment. [`Deployment`] and [`Regions`] say where a key may live.
//! - [`Verifier`]: [`KeyStatus`] of each distinct secret, asking both cloud regions before
//!   calling a key invalid. [`Revoker`]: `POST /api/revoke_leaked_key` per region.
//! - [`PostHogClient<Reader>`] and [`PostHogClient<Writer>`]: the private API for one personal
//!   API key whose scopes fit the role; write operations exist only on the writer type.
//! - [`CaptureClient`] and [`Event`]: capture with a `phc_` project API key.
//! - [`ClientConfig`], [`RetryPolicy`] and [`Sleeper`]: timeout (10 s by default), bounded
//!   retries, and an injectable wait.
//! - [`Error`]: PostHog's error envelope as types.
//!
//! # Credentials stay secret
//!
//! Credentials are [`Secret`](hogguard_secret::Secret)s. They travel only in the
//! `Authorization: Bearer` header (the leaked-key report and capture put them in the JSON body
//! as PostHog requires), never in a URL; redirects are not followed; error details have every
//! credential of the request replaced by its mask; answers that carry a new key are zeroed
//! after parsing and the key goes straight into a `Secret`.
//!
//! # Choices where PostHog's behaviour is unverified
//!
//! - `phs_` secrets are probed with `GET /api/feature_flag/local_evaluation` (the reference
//!   leaves the exact path open): 200 is live, `authentication_failed` is invalid, anything
//!   else is unknown.
//! - A personal key is invalid only on `code == "authentication_failed"` (401 or 403).
//!   `not_authenticated` from `/api/users/@me/` is unknown, not invalid: PostHog did not look
//!   at the credential.
//! - `@current` answering anything but success, an invalid credential or a transient failure
//!   (e.g. the older permission model's 403) falls back to `/api/users/@me/`.
//! - Capture hosts given as the API host (`us.i.posthog.com`, common in SDK settings) mean
//!   that region; `app.posthog.com` is canonicalised to `us.posthog.com`, so no redirect is
//!   needed.
//! - Throttling is retried for every call, writes included, because PostHog throttles before
//!   the view runs; the wait comes from `detail`, as PostHog sends no `Retry-After`.
#![deny(missing_docs)]

mod capture;
mod client;
mod config;
mod deployment;
mod error;
mod hosts;
mod model;
mod query;
mod revoke;
mod scope;
mod transport;
mod verify;

pub use capture::{CaptureClient, Event};
pub use client::{PostHogClient, Reader, ReaderClient, Role, Writer, WriterClient};
pub use config::{ClientConfig, DEFAULT_TIMEOUT, RetryPolicy, Sleeper, ThreadSleeper};
pub use deployment::{Deployment, Regions};
pub use error::{Error, NetworkError};
pub use hosts::{BaseUrl, HostSettings, Hosts, Region};
pub use model::{
    ActivityChange, ActivityDetail, ActivityEntry, ActivityLogPage, ActivityLogQuery,
    NewProjectSecretKey, OrganizationBasic, PersonalKeyInfo, ProjectBasic, ProjectSecretKeyInfo,
    UserBasic, UserInfo, WILDCARD_SCOPE, scope_allowed,
};
pub use revoke::{Revocation, RevokeReport, Revoker};
pub use scope::{Access, InvalidScope, Scope, minimal_scopes};
pub use verify::{
    DEFAULT_CONCURRENCY, Evidence, KeyStatus, LiveKey, NOT_A_CREDENTIAL_REASON, PROJECT_KEY_REASON,
    REFRESH_TOKEN_REASON, Verifier,
};
