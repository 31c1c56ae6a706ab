//! Crash-safe rotation of PostHog credentials and webhook secrets: a rotation never leaves a
//! service without a working key, survives a crash at any point, and resumes from what the
//! store and PostHog really hold rather than by replaying its log.
//!
//! ```
//! use hogguard_posthog::{ClientConfig, Hosts};
//! use hogguard_rotate::{
//!     AuditRecord, AuditSinkError, Interaction, InteractionError, Outcome, PostHogAccess,
//!     ProjectSecretKeyProvider, Provider, RotationRequest, Rotator, Store,
//! };
//! use hogguard_secret::Secret;
//! use hogguard_testkit::posthog::{FakeHog, MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, UserSpec};
//!
//! // A PostHog stand-in with a project, its admin's `project:write` key and the key to rotate.
//! let hog = FakeHog::start();
//! let org = hog.add_organization("Acme");
//! let project = hog.add_project(&org, "Web");
//! let admin = hog.add_user(UserSpec::new("ops@acme.test").member_of(&org, MembershipLevel::Admin));
//! let admin_key = hog.add_personal_key(admin.id, PersonalKeySpec::new("rotator").scopes(["project:write"]));
//! let old = hog.add_project_secret_key(project.id, ProjectSecretKeySpec::new("flags", ["feature_flag:read"]));
//!
//! let dir = tempfile::tempdir()?;
//! let env_file = dir.path().join(".env.production");
//! std::fs::write(&env_file, format!("# flags\nPOSTHOG_FLAGS_KEY={}\n", old.value))?;
//!
//! // What the CLI builds from hogguard.toml and its flags.
//! let posthog = PostHogAccess::new(Hosts::new(hog.base_url())?, ClientConfig::default());
//! let provider = ProjectSecretKeyProvider::new(posthog, Secret::new(admin_key.value), project.id);
//! let request = RotationRequest::new(
//!     "production",
//!     "flags_key",
//!     "POSTHOG_FLAGS_KEY",
//!     Provider::ProjectSecretKey(provider),
//!     Store::env_file(&env_file),
//! )
//! .verify_command("true"); // e.g. the application's health check
//!
//! // The CLI writes these to hogguard's audit log.
//! let audit = |record: &AuditRecord<'_>| -> Result<(), AuditSinkError> {
//!     assert!(record.action.starts_with("key.rotate."));
//!     Ok(())
//! };
//! /// The CLI talks to the terminal; an automatic rotation only shows progress.
//! struct Quiet;
//! impl Interaction for Quiet {
//!     fn show(&mut self, _: &str) {}
//!     fn read_secret(&mut self, _: &str) -> Result<Secret, InteractionError> { Err(InteractionError::Cancelled) }
//!     fn confirm(&mut self, _: &str) -> Result<bool, InteractionError> { Err(InteractionError::Cancelled) }
//! }
//!
//! let rotator = Rotator::new(dir.path().join(hogguard_rotate::ROTATIONS_DIR));
//! println!("{}", rotator.plan(&request)); // --dry-run
//! let outcome = rotator.run(&request, &mut Quiet, &audit)?;
//! assert!(matches!(outcome, Outcome::Completed { .. }));
//! let text = std::fs::read_to_string(&env_file)?;
//! let new = hogguard_dotenv::parse(&text)?.get("POSTHOG_FLAGS_KEY").unwrap().to_owned();
//! assert!(hog.is_live(&new) && !hog.is_live(&old.value));
//! assert!(text.starts_with("# flags\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the CLI calls
//!
//! `hogguard rotate ENV CREDENTIAL [--dry-run] [--resume] [--abort] [--finish]
//! [--if-older-than 30d] [--stdin] [--revoke-old] [--grace 24h]` maps to:
//!
//! - a [`RotationRequest`] built from the environment's configuration: the variable, a
//!   [`Store`] ([`Store::env_file`] or [`Store::command`]), a [`Provider`] chosen by the
//!   credential's kind, [`RotationRequest::verify_command`] and
//!   [`RotationRequest::if_older_than`]; `--revoke-old` is [`PersonalKeyProvider::revoke_old`],
//!   `--grace` is [`WebhookSecretProvider::grace`];
//! - one [`Rotator`] on `<project root>/`[`ROTATIONS_DIR`];
//! - `--dry-run`: [`Rotator::plan`] (changes nothing), with what the CLI could not resolve
//!   added by [`Plan::add_missing`] (a project secret key without its admin key or project is
//!   planned with [`ProjectSecretKeyProvider::for_plan`]); exit 1 unless [`Plan::can_run`].
//!   Otherwise [`Rotator::lock`] first
//!   (a busy credential is refused before the audit log is opened), then on the
//!   [`LockedRotation`]: no flag: [`run`](LockedRotation::run); `--resume`:
//!   [`resume`](LockedRotation::resume); `--abort`: [`abort`](LockedRotation::abort);
//!   `--finish`: [`finish`](LockedRotation::finish);
//! - an [`Interaction`] on the terminal (`--stdin` reads keys from standard input instead of
//!   a no-echo prompt) and an [`AuditSink`] on the audit log (a closure over
//!   [`AuditRecord`]);
//! - exit code: 0 for any [`Outcome`]; 1 when [`RotateError::is_failed_check`]; 2 for every
//!   other error, [`RotateError::Busy`] and [`RotateError::RotationOpen`] included. Errors'
//!   messages never hold a secret, say what to do next (`--resume`, `--abort`), and leave
//!   their cause to [`std::error::Error::source`].
//!
//! # The state machine
//!
//! A rotation is one journal file and two store slots: `VAR`, the key in use, and
//! `VAR_PREVIOUS` ([`PREVIOUS_SUFFIX`]), the key it replaces, kept until that key is retired
//! so [`Rotator::abort`] can put it back (AWS Secrets Manager's CURRENT / PREVIOUS). Rotations
//! start only with `VAR` set and `VAR_PREVIOUS` empty; `VAR_PREVIOUS` only ever holds the old
//! key, and a rotation stops if it finds anything else there.
//!
//! Every step journals its **intent** (fsynced) and audits it before acting, and journals its
//! result after; the journal never holds a secret, only masks and fingerprints. The phase is
//! then read from reality, not from the journal's last line: `VAR` holds either the old key
//! (its fingerprint is in the start record) or a key this rotation stored (its fingerprint is
//! in a `store_new_key` intent, written before the store is touched), or the rotation stops
//! with [`RotateError::StoreChanged`].
//!
//! **Project secret API key** (`phs_`, automatic): create-new-then-delete-old, never `roll`.
//!
//! 1. *Start*: find the old key by mask (or the configured id) in PostHog's list; journal the
//!    old key, the new label (`<old label> rot-<rotation id>`, unique per project) and scopes.
//! 2. *`VAR` holds the old key*: delete every key carrying this rotation's label (its value,
//!    shown only in the lost create answer, is gone), then `create_key` (a lost answer or a
//!    taken label is cleaned up and retried, at most 3 times), `check_new_key` (PostHog's
//!    local-evaluation endpoint accepts it; a refused key is deleted at once) and
//!    `store_new_key` (`VAR` = new, `VAR_PREVIOUS` = old, one atomic write).
//! 3. *`VAR` holds the new key*: `run_verify_command` (skipped if it passed for this key), then
//!    `retire_old_key` once PostHog lists the new key (a 404 counts as deleted), then
//!    `drop_previous_key`, then close.
//!
//! **Webhook secret** (`whsec_`, automatic with overlap): `obtain_new_key` generates 32
//! random bytes (a generated secret that was not stored is forgotten: nothing else knows it),
//! `store_new_key`, `run_verify_command`, `start_grace_period` (default 24 h), and then
//! [`Outcome::GracePeriod`]: receivers read `VAR` and `VAR_PREVIOUS` and accept both while
//! the sender switches. The first [`Rotator::run`] after the grace period, or
//! [`Rotator::finish`], runs `drop_previous_key` and closes; once that began it always
//! completes.
//!
//! **Personal API key** (`phx_`, assisted, because PostHog lets only its web app create and
//! delete them): the person is shown the keys page and the exact scopes (and project or
//! organisation restriction) the environment allows (an old key that reaches every project
//! is to be replaced by one restricted to [`PersonalKeyProvider::project_id`], when given),
//! gives the new key, which is checked through `@current` (live, not the old value, no scope
//! outside the allowed ones and no wider restriction); then it is stored and verified, the
//! person deletes the old key (or `--revoke-old` reports it to `revoke_leaked_key`), and
//! PostHog is probed, a bounded number of times with the injectable sleeper, until it calls
//! the old key invalid. A key the person
//! gave that was never stored is named again on resume so they can reuse or delete it.
//!
//! **Project API key** (`phc_`): [`project_api_key_guidance`] (public by design; the reset is
//! web-login only and ends the old token at once, so it is a coordinated deploy), then the
//! person resets it and pastes the new token, which is stored (no previous slot: the old token
//! is dead) and verified.
//!
//! # Journal and lock files
//!
//! In [`ROTATIONS_DIR`] (created 0700, with `.hogguard/`, whatever the umask):
//! `<environment>.<credential>.lock`, locked with `flock` for the whole of each call
//! ([`RotateError::Busy`] if taken), and one
//! `<environment>.<credential>.<rotation id>.jsonl` per rotation (names percent-encoded,
//! mode 0600, fsynced on create together with the directory). Each line is one record,
//! appended and `fdatasync`ed before the call that follows it:
//!
//! ```text
//! {"seq":1,"at":1735689600,"event":"started","rotation_id":"a1b2c3d4e5f6","environment":"production",
//!  "credential":"flags_key","variable":"POSTHOG_FLAGS_KEY","provider":"project_secret_key",
//!  "store":".env.production","old":{"id":"…","mask":"phs_...abcd","fingerprint":"<sha256>"},
//!  "project_id":1,"new_label":"flags rot-a1b2c3d4e5f6","scopes":["feature_flag:read"]}
//! {"seq":2,"at":1735689601,"event":"intent","step":"create_key"}
//! {"seq":3,"at":1735689601,"event":"done","step":"create_key","key":{"id":"…","mask":"phs_...wxyz","fingerprint":"<sha256>"}}
//! {"seq":4,"at":1735689601,"event":"intent","step":"store_new_key","key":{…}}
//! …
//! {"seq":N,"at":1735689603,"event":"closed","outcome":"completed"}
//! ```
//!
//! `at` is Unix seconds; `key` is a [`KeyRef`]; a grace period's `done` carries `until`;
//! `{"event":"abort_started"}` marks an abort under way. A rotation is open until its `closed`
//! record. A torn last line (a crash mid-append) is
//! ignored and cut before the next append; any other unreadable line stops everything with
//! [`RotateError::JournalCorrupt`].
//!
//! # Stores
//!
//! [`Store::env_file`] edits only the two variables' values with [`hogguard_dotenv::set`] and
//! [`hogguard_dotenv::remove`] (comments, order, quoting, `export`, line endings and the
//! file's owner, group and mode kept; new files 0600) and replaces the file with
//! [`hogguard_fs::replace`] (a uniquely named temporary file, fsync, rename, fsync of the
//! directory), holding the lock file `.<file>.hogguard-lock` from the read to the read-back
//! so that writers of one file in any process take turns. [`Store::command`] feeds the value to the user's write command on standard
//! input, with `HOGGUARD_VARIABLE` and `HOGGUARD_ACTION` (`set` or `remove`) in its
//! environment, and reads every write back with the read command.
//!
//! # Crash table
//!
//! A crash (or, in tests, `Rotator::interrupt_when` of the `fault-injection` feature stopping
//! at the same `CrashPoint`) right after the event on the left; the next [`Rotator::resume`] does what the right column says. At
//! every point `VAR` holds a working key.
//!
//! | Crash after | `VAR` / `VAR_PREVIOUS` | PostHog | Resume |
//! |---|---|---|---|
//! | `started` record | old / — | old | `phs_`: list by label (nothing), create |
//! | `create_key` intent | old / — | old, maybe a new key whose answer was lost | delete keys with the rotation's label, create again |
//! | `create_key` done, `check_new_key` | old / — | old + new (value only in the dead process) | same: the new key is deleted, another created |
//! | `store_new_key` intent, temporary file written (rename not done) | old / — | old + new | temporary file removed; as above |
//! | rename done, `done` not journaled | new / old | old + new | fingerprint matches the intent: continue with the verify command |
//! | `store_new_key` done, verify command running or failed | new / old | old + new | run the verify command again (`--abort`: restore old, delete new) |
//! | `retire_old_key` intent | new / old | new, old maybe deleted | list: delete the old key if still there (404 = done) |
//! | `retire_old_key` done | new / old (dead) | new | remove `VAR_PREVIOUS`, close |
//! | `drop_previous_key` done | new / — | new | close |
//! | webhook: `obtain_new_key` done (generated) | old / — | — | generate again |
//! | webhook: `start_grace_period` done | new / old | — | [`Outcome::GracePeriod`] until it ends |
//! | webhook: `drop_previous_key` intent | new / old or — | — | finish regardless of the clock |
//! | `abort_started` (abort checked it can go back, then began) | old or new / old | old (+ new) | complete the abort, never the rotation: restore `VAR`, delete keys with the rotation's label, empty `VAR_PREVIOUS` |
//!
//! Tests stop at every one of these points and in the middle of the env-file write, for both
//! automatic providers (and for their aborts), resume, and check that the store held a working
//! key throughout and that exactly one new key is live, the old one is gone and PostHog holds
//! no orphan key; they also stop again during each recovery, and SIGKILL a child process at
//! selected points.
//!
//! # Audit
//!
//! See [`AuditSink`]: `key.rotate.<step>.intent` before each step and `key.rotate.<step>`
//! after it (success or failure), plus start, resume, not_due, grace_period, complete and
//! abort; masks, fingerprints and key ids only. If the sink refuses a record, the rotation
//! stops before acting ([`RotateError::Audit`]).
//!
//! # Choices and limits
//!
//! - The new project secret key is verified through PostHog's local-evaluation endpoint (the
//!   reference leaves the exact `phs_` probe open); the old key is deleted as soon as the verify
//!   command passes: there is no drain period for consumers that cache the old key.
//! - A project secret API key is matched to the stored value by PostHog's mask (first and last
//!   four characters); when two keys share a mask the key id must be given.
//! - Personal keys: rolling the old key in the dashboard instead of creating a new one is
//!   accepted (its old value is already dead then); a key the person gave but that was refused
//!   stays in PostHog until they delete it (the error says so).
//! - Project API keys cannot be verified at PostHog (capture accepts any well-shaped token).
//! - The verify command has no timeout of its own.
#![deny(missing_docs)]

mod audit;
mod error;
mod fault;
mod interaction;
mod journal;
mod outcome;
mod plan;
mod providers;
mod request;
mod rotator;
mod session;
mod step;
mod store;
mod time;

pub use audit::{AuditRecord, AuditResult, AuditSink, AuditSinkError};
pub use error::RotateError;
#[cfg(feature = "fault-injection")]
pub use fault::CrashPoint;
pub use interaction::{Interaction, InteractionError};
pub use journal::KeyRef;
pub use outcome::{AgeSource, KeyAge, OpenRotation, Outcome};
pub use plan::Plan;
pub use providers::project_api_key::project_api_key_guidance;
pub use request::{
    DEFAULT_GRACE, DEFAULT_PROBE_ATTEMPTS, DEFAULT_PROBE_INTERVAL, PersonalKeyProvider,
    PostHogAccess, ProjectApiKeyProvider, ProjectSecretKeyProvider, Provider, ProviderKind,
    RotationRequest, WebhookSecretProvider,
};
pub use rotator::{LockedRotation, ROTATIONS_DIR, Rotator};
pub use step::Step;
pub use store::{PREVIOUS_SUFFIX, Store, StoreError};
pub use time::{Clock, SystemClock};
