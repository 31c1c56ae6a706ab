//! A PostHog stand-in: a real HTTP server on 127.0.0.1 that answers the parts of PostHog's
//! private API and capture that hogguard talks to, byte for byte as
//! `shared/reference/posthog-api.md` documents them, so tests never need the real PostHog.
//!
//! Start one with [`FakeHog::start`], seed it (organisations, projects, users, personal and
//! project secret API keys, team secret tokens, OAuth tokens), point the code under test at
//! [`FakeHog::base_url`] for both the private API and capture, then assert on what it answered
//! and recorded. Two instances play the US and EU regions: keys are region-bound because each
//! instance has its own state.
//!
//! ```
//! use hogguard_testkit::posthog::{FakeHog, Fault, MembershipLevel, PersonalKeySpec, UserSpec};
//!
//! let hog = FakeHog::start();
//! let org = hog.add_organization("Acme");
//! let project = hog.add_project(&org, "Web");
//! let user = hog.add_user(UserSpec::new("ops@acme.test").member_of(&org, MembershipLevel::Admin));
//! let key = hog.add_personal_key(user.id, PersonalKeySpec::new("ci").scopes(["user:read"]));
//! hog.inject(Fault::status(503).on_path("/api/"));
//! // … call `{hog.base_url()}/api/personal_api_keys/@current/` with `Bearer {key.value}` …
//! # let _ = (project, key);
//! ```
//!
//! # What is faithful
//!
//! - **Paths**: every private-API route with or without a trailing slash, `/api/projects/{id}/`
//!   and its `/api/environments/{id}/` alias; capture's `/i/v0/e`, `/e`, `/capture`, `/track`,
//!   `/engage` and `/batch`.
//! - **Credentials** are made with PostHog's generator ([`crate::keys`]); personal and project
//!   secret API keys are stored only as `sha256$<hex>` with the `phx_...abcd` mask; team secret
//!   tokens and OAuth tokens in plaintext, as PostHog stores them.
//! - **Authentication** (`posthog/auth.py`): a personal API key from the Bearer header, the
//!   `personal_api_key` body field or the query string, with the matching `…found in request
//!   {Authorization header|body|query string} is invalid.` 401; `pha_` tokens go to OAuth
//!   (`Invalid access token.`, `Access token has expired.`); inactive users' keys fail; no
//!   credential is 401 `not_authenticated`. `last_used_at` moves at most once an hour.
//! - **Permissions** (`posthog/permissions.py`): the order authentication → scope (legacy keys
//!   pass everything; unmapped actions are `This action does not support Personal API Key
//!   access`; `scoped_teams` / `scoped_organizations` with their exact messages; `*`;
//!   `X:write` implies `X:read`; `API key missing required scope '…'`) → project membership
//!   (`You don't have access to the project.`) → admin level for project-secret-key writes
//!   (`You don't have sufficient permissions in the project.`).
//! - **Personal API keys**: a PAK may only retrieve itself (`@current` or its own id); list,
//!   create, update, delete and roll are 403, other users' ids 404. The serializer's fields and
//!   order, `value` only on create and roll, empty scopes shown as `["*"]`. Web-app actions
//!   (create with validation and the 10-key cap, roll, delete) are [`FakeHog`] methods.
//! - **Project secret API keys**: list (limit/offset paginated), create (201 with `value`; only
//!   `endpoint:read` / `feature_flag:read`; `*` refused; labels unique per project; at most 50),
//!   retrieve, update, delete (204), roll (200 with the new `value`, old value dead at once,
//!   `last_rolled_at` set), each with PostHog's validation messages.
//! - **Activity log**: `PersonalAPIKey` rows per scoped team, else per scoped organisation, else
//!   per organisation of the owner (organisation rows appear with `include_organization_scoped=1`),
//!   with PostHog's `context`; `ProjectSecretAPIKey` rows per project; rolls log the
//!   `mask_value` change; cursor pagination `{"next","previous","results"}`, newest first.
//! - **`revoke_leaked_key`**: unauthenticated, JSON only, token ≤ 200 characters, prefix and
//!   legacy-shape detection, rolls PAKs and PSAKs, revokes OAuth tokens, `found: false` for team
//!   secret tokens and unknown strings; optional per-IP throttle with DRF's wait arithmetic.
//! - **Capture**: the three body forms, batch-token precedence, token shape checks
//!   (`API key is not valid: personal_api_key`, …), missing/empty `distinct_id` and event name,
//!   plain-text errors with capture's messages, body limits (2 MB, 20 MB for `/batch`), and
//!   `200 {"status":"Ok"}` for any well-shaped token, known or not.
//! - **Errors** use the drf-exceptions-hog envelope `{"type","code","detail","attr"}`, compact
//!   as DRF renders it; 429 is `throttled_error` / `throttled` with `Expected available in N
//!   seconds.` and no `Retry-After` header.
//!
//! # Choices where the reference is unverified \[U\]
//!
//! - The personal-key viewset follows the newer `43ac4cf` version (self-access permission and
//!   roll), not the older `personal_api_key:write` scope model.
//! - A project id that does not exist (or is not a number) is 404 `Project not found.` after the
//!   scope check, before the membership check.
//! - 401 is used for every authentication failure (never 403), without a `WWW-Authenticate`
//!   header.
//! - `phs_` probing: a team secret token (primary or backup) or project secret API key as Bearer
//!   on `GET /api/feature_flag/local_evaluation` or `/api/projects/{id}/feature_flags/
//!   local_evaluation` returns `{"flags":[],"group_type_mapping":{},"cohorts":{}}`; an unknown
//!   `phs_` is 401 `Secret API token is invalid.`; a secret of another project is 403. Project
//!   secret keys are not scope-checked there (PostHog's scope permission ignores them). PAKs and
//!   OAuth tokens need `feature_flag:read`; the unprefixed route uses `?token=phc_…` or the
//!   user's current project.
//! - `/api/users/@me/` returns a subset of `UserSerializer` (identity, `team`, `organization`,
//!   `organizations`).
//! - Project secret key list uses DRF's `LimitOffsetPagination` (PostHog's default, 100 a page);
//!   the label limit is 40 characters; renaming onto a taken label is a 500, because PostHog's
//!   `update` does not catch the unique-label error `create` turns into a 400.
//! - Activity rows: `changes` is `[]` on create and `null` on delete; `ProjectSecretAPIKey` rows
//!   have `context: null`; rows written by the system (a leaked-key roll) have `user: null` and
//!   `is_system: true`; `unread` is always true. Cursors are base64 of `o=<offset>`, opaque like
//!   DRF's but not its exact encoding; `?page=` pagination is not modelled.
//! - `revoke_leaked_key` is unthrottled unless [`FakeHogBuilder::revoke_throttle`] is set
//!   (PostHog's rate is unpublished); `found: false` for team secret tokens follows the reference
//!   although newer PostHog code reports `team_secret_token` for migrated ones.
//! - Capture: a batch `{"batch":[…]}` may omit the batch token (per-event tokens then decide);
//!   `uuid` must be a UUID (or empty, meaning absent); GET and OPTIONS on capture routes are 405;
//!   gzip bodies (recognised by their magic bytes) are inflated up to the route's limit.
//! - Injected 502/503/504 on the private API come from PostHog's load balancer, whose body is
//!   unknown: the stand-in sends the reason phrase as plain text.
//!
//! The clock does not tick: timestamps come from [`FakeHog::now`], moved only by
//! [`FakeHog::set_now`] and [`FakeHog::advance`], so tests are deterministic. Raw secrets are
//! never logged: the request log keeps a SHA-256 of each Bearer credential, and [`SeededKey`]'s
//! `Debug` shows only the mask.

mod activity_log;
mod auth;
mod capture;
mod control;
mod demo;
mod faults;
mod flags;
mod http;
mod model;
mod personal_keys;
mod repr;
mod resources;
mod revoke;
mod routes;
mod scopes;
mod secret_keys;
mod server;
mod time;
mod tokens;
mod users;
mod world;

pub use demo::Demo;
pub use faults::{Fault, Gate};
pub use model::{
    ActivityChange, ActivityContext, ActivityDetail, ActivityEntry, Annotation, CapturedEvent,
    FeatureFlag, FeatureFlagSpec, MembershipLevel, MembershipSpec, OAuthTokenKind, OAuthTokenSpec,
    PersonalKey, PersonalKeySpec, ProjectSecretKey, ProjectSecretKeySpec, RateLimit, Rejection,
    RequestRecord, SeededKey, SeededProject, SeededUser, UserSpec,
};
pub use server::{FakeHog, FakeHogBuilder};
pub use time::Timestamp;
pub use tokens::sha256_hex;

/// The control endpoints under `/_fakehog/`, as `(method and path, what it does)`.
pub const CONTROL_ENDPOINTS: &[(&str, &str)] = control::ENDPOINTS;
