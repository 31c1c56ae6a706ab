//! What the stand-in knows and records: the specs tests seed it with, the stored credentials,
//! captured events, activity-log rows and the request log.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::Timestamp;
use super::tokens;

/// A member's level in an organisation (`OrganizationMembership.Level`); project access in the
/// stand-in is the organisation membership, as for PostHog projects without access control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipLevel {
    /// Can read projects and use them; cannot manage project secret API keys.
    Member,
    /// Can also manage project settings and project secret API keys.
    Admin,
    /// Like admin, and owns the organisation.
    Owner,
}

/// One organisation a seeded user belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MembershipSpec {
    /// The organisation's UUID.
    pub organization_id: String,
    /// The user's level there.
    pub level: MembershipLevel,
}

/// A user to seed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UserSpec {
    /// The login email.
    pub email: String,
    /// First name (part of `user_name` in activity-log context).
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// Organisations the user belongs to; the first is the current one.
    #[serde(default)]
    pub memberships: Vec<MembershipSpec>,
    /// Inactive users' keys stop authenticating, as PostHog filters `user__is_active=True`.
    #[serde(default = "active_by_default")]
    pub is_active: bool,
    /// The user's current project; defaults to the first project of the first organisation.
    #[serde(default)]
    pub current_project_id: Option<u64>,
}

fn active_by_default() -> bool {
    true
}

impl UserSpec {
    /// An active user with `email` and no memberships yet.
    pub fn new(email: impl Into<String>) -> Self {
        UserSpec {
            email: email.into(),
            first_name: String::new(),
            last_name: String::new(),
            memberships: Vec::new(),
            is_active: true,
            current_project_id: None,
        }
    }

    /// Sets the first and last name.
    pub fn name(mut self, first: impl Into<String>, last: impl Into<String>) -> Self {
        self.first_name = first.into();
        self.last_name = last.into();
        self
    }

    /// Adds a membership of `organization_id` at `level`.
    pub fn member_of(mut self, organization_id: impl Into<String>, level: MembershipLevel) -> Self {
        self.memberships.push(MembershipSpec {
            organization_id: organization_id.into(),
            level,
        });
        self
    }

    /// Marks the user deactivated.
    pub fn inactive(mut self) -> Self {
        self.is_active = false;
        self
    }
}

/// A seeded user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeededUser {
    /// The numeric id (`user_id` in key metadata).
    pub id: u64,
    /// The user's UUID.
    pub uuid: String,
    /// The login email.
    pub email: String,
}

/// A seeded project (a PostHog team; the stand-in gives projects and environments one id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeededProject {
    /// The project id used in `/api/projects/{id}/` and `/api/environments/{id}/`.
    pub id: u64,
    /// The owning organisation's UUID.
    pub organization_id: String,
    /// The project's name.
    pub name: String,
    /// The public `phc_` project token capture accepts.
    pub api_token: String,
}

/// A personal API key to seed, or to create as the user would in the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PersonalKeySpec {
    /// The key's label (PostHog allows at most 40 characters).
    pub label: String,
    /// Scopes such as `user:read` or `*`; empty makes a legacy unscoped key, shown as `["*"]`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Project ids the key is restricted to.
    #[serde(default)]
    pub scoped_teams: Option<Vec<u64>>,
    /// Organisation UUIDs the key is restricted to.
    #[serde(default)]
    pub scoped_organizations: Option<Vec<String>>,
    /// Creation time; defaults to the stand-in's clock.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last use; defaults to never.
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
    /// Last roll; defaults to never.
    #[serde(default)]
    pub last_rolled_at: Option<Timestamp>,
    /// Give the key a pre-2021 value (43 URL-safe characters, no `phx_` prefix).
    #[serde(default)]
    pub unprefixed: bool,
}

impl PersonalKeySpec {
    /// A legacy-scoped (`*`) key labelled `label`, created now.
    pub fn new(label: impl Into<String>) -> Self {
        PersonalKeySpec {
            label: label.into(),
            scopes: Vec::new(),
            scoped_teams: None,
            scoped_organizations: None,
            created_at: None,
            last_used_at: None,
            last_rolled_at: None,
            unprefixed: false,
        }
    }

    /// Sets the scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts the key to these project ids.
    pub fn scoped_teams(mut self, teams: impl IntoIterator<Item = u64>) -> Self {
        self.scoped_teams = Some(teams.into_iter().collect());
        self
    }

    /// Restricts the key to these organisation UUIDs.
    pub fn scoped_organizations<S: Into<String>>(
        mut self,
        organizations: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scoped_organizations = Some(organizations.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the creation time.
    pub fn created_at(mut self, at: Timestamp) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Sets the last-use time.
    pub fn last_used_at(mut self, at: Timestamp) -> Self {
        self.last_used_at = Some(at);
        self
    }

    /// Sets the last-roll time.
    pub fn last_rolled_at(mut self, at: Timestamp) -> Self {
        self.last_rolled_at = Some(at);
        self
    }

    /// Gives the key a pre-2021 unprefixed value.
    pub fn unprefixed(mut self) -> Self {
        self.unprefixed = true;
        self
    }
}

/// A project secret API key to seed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProjectSecretKeySpec {
    /// The label, unique per project.
    pub label: String,
    /// Scopes; PostHog allows only `endpoint:read` and `feature_flag:read` (not checked when
    /// seeding, so tests can build states the API would refuse).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The creating user's id, if any.
    #[serde(default)]
    pub created_by: Option<u64>,
    /// Creation time; defaults to the stand-in's clock.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

impl ProjectSecretKeySpec {
    /// A key labelled `label` with `scopes`.
    pub fn new<S: Into<String>>(
        label: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        ProjectSecretKeySpec {
            label: label.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
            created_by: None,
            created_at: None,
        }
    }

    /// Records `user_id` as the creator.
    pub fn created_by(mut self, user_id: u64) -> Self {
        self.created_by = Some(user_id);
        self
    }

    /// Sets the creation time.
    pub fn created_at(mut self, at: Timestamp) -> Self {
        self.created_at = Some(at);
        self
    }
}

/// Which OAuth token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthTokenKind {
    /// `pha_`, valid for an hour.
    Access,
    /// `phr_`, valid for 30 days.
    Refresh,
}

/// An OAuth token to seed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct OAuthTokenSpec {
    /// Access or refresh.
    pub kind: OAuthTokenKind,
    /// Granted scopes; an access token without scopes is refused everywhere.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Expiry; defaults to 1 hour (access) or 30 days (refresh) after the stand-in's clock.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl OAuthTokenSpec {
    /// An access token with `scopes`.
    pub fn access<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        OAuthTokenSpec {
            kind: OAuthTokenKind::Access,
            scopes: scopes.into_iter().map(Into::into).collect(),
            expires_at: None,
        }
    }

    /// A refresh token.
    pub fn refresh() -> Self {
        OAuthTokenSpec {
            kind: OAuthTokenKind::Refresh,
            scopes: Vec::new(),
            expires_at: None,
        }
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// A key created in the stand-in: its id and the raw value, which only its creator ever sees.
/// `Debug` shows the mask, never the value.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SeededKey {
    /// The key's id (`/api/personal_api_keys/{id}/`, `…/project_secret_api_keys/{id}/`).
    pub id: String,
    /// The raw secret.
    pub value: String,
}

impl fmt::Debug for SeededKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededKey")
            .field("id", &self.id)
            .field("value", &tokens::mask_key_value(&self.value))
            .finish()
    }
}

/// PostHog refused a dashboard action, with the status and body its API gives for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status (400 for validation errors).
    pub status: u16,
    /// The exact JSON body.
    pub body: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl std::error::Error for Rejection {}

/// A stored personal API key (`PersonalAPIKey`): hashed, with its mask, as PostHog keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalKey {
    /// The key's id.
    pub id: String,
    /// The owner's id.
    pub user_id: u64,
    /// The label.
    pub label: String,
    /// `sha256$<hex>` of the value.
    pub secure_value: String,
    /// `phx_...abcd`.
    pub mask_value: String,
    /// Scopes; empty for a legacy key.
    pub scopes: Vec<String>,
    /// Project restriction.
    pub scoped_teams: Option<Vec<u64>>,
    /// Organisation restriction.
    pub scoped_organizations: Option<Vec<String>>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last successful authentication, updated at most hourly.
    pub last_used_at: Option<Timestamp>,
    /// Last roll.
    pub last_rolled_at: Option<Timestamp>,
}

/// A stored project secret API key (`ProjectSecretAPIKey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectSecretKey {
    /// The key's id.
    pub id: String,
    /// The project it belongs to.
    pub project_id: u64,
    /// The label, unique per project.
    pub label: String,
    /// `sha256$<hex>` of the value.
    pub secure_value: String,
    /// `phs_...abcd`.
    pub mask_value: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The creating user, if any.
    pub created_by: Option<u64>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last successful authentication, updated at most hourly.
    pub last_used_at: Option<Timestamp>,
    /// Last roll.
    pub last_rolled_at: Option<Timestamp>,
}

/// An event accepted by capture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapturedEvent {
    /// The capture path it was posted to.
    pub path: String,
    /// The project token it carried (capture accepts unknown tokens too).
    pub token: String,
    /// The project that token belongs to here, if any.
    pub project_id: Option<u64>,
    /// The event name.
    pub event: String,
    /// The distinct id, stringified and cut to 200 characters as capture does.
    pub distinct_id: String,
    /// The client-supplied `uuid`, if any.
    pub uuid: Option<String>,
    /// The event's properties.
    pub properties: serde_json::Map<String, Value>,
    /// The client-supplied `timestamp`, if any.
    pub timestamp: Option<String>,
    /// When the stand-in received it (its clock).
    pub received_at: Timestamp,
}

/// One activity-log row (`ActivityLog`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivityEntry {
    /// The row's UUID.
    pub id: String,
    /// The project the row belongs to; `None` for organisation-level rows.
    pub team_id: Option<u64>,
    /// The organisation.
    pub organization_id: String,
    /// Who acted; `None` for system actions such as a leaked-key roll.
    pub user_id: Option<u64>,
    /// Always false in the stand-in.
    pub was_impersonated: bool,
    /// Whether the system acted without a user.
    pub is_system: bool,
    /// The `x-posthog-client` header of the request that caused it.
    pub client: Option<String>,
    /// `created`, `updated`, `deleted`, …
    pub activity: String,
    /// The changed object's id.
    pub item_id: String,
    /// `PersonalAPIKey` or `ProjectSecretAPIKey`.
    pub scope: String,
    /// What changed.
    pub detail: ActivityDetail,
    /// When (the stand-in's clock).
    pub created_at: Timestamp,
}

/// The `detail` of an activity-log row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivityDetail {
    /// Field changes; `[]` on create, `null` on delete.
    pub changes: Option<Vec<ActivityChange>>,
    /// Always `null` here.
    pub trigger: Option<Value>,
    /// The object's label.
    pub name: Option<String>,
    /// Always `null` here.
    pub short_id: Option<String>,
    /// Always `null` here.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Who and where, for personal API key rows.
    pub context: Option<ActivityContext>,
}

/// One field change in an activity-log row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivityChange {
    /// The scope (`PersonalAPIKey`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `changed`, `created` or `deleted`.
    pub action: String,
    /// The field (`mask_value` on a roll).
    pub field: Option<String>,
    /// The old value.
    pub before: Option<Value>,
    /// The new value.
    pub after: Option<Value>,
}

/// `PersonalAPIKeyContext`: the owner and the location a personal-key row was written for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActivityContext {
    /// The key owner's id.
    pub user_id: u64,
    /// The key owner's email.
    pub user_email: String,
    /// The key owner's full name.
    pub user_name: String,
    /// The row's organisation name.
    pub organization_name: String,
    /// The row's project name, `Unknown Project` for organisation-level rows (as PostHog).
    pub team_name: String,
}

/// One request the stand-in answered (control requests excluded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// The HTTP method.
    pub method: String,
    /// The path as sent.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// SHA-256 hex of the `Authorization: Bearer` credential, so tests can count distinct
    /// secrets without the log holding any.
    pub credential_sha256: Option<String>,
    /// Every header as received: its lowercase name and the SHA-256 hex of its value, so tests
    /// can tell which headers arrived and that none carried a given secret.
    pub headers: Vec<(String, String)>,
    /// When (the stand-in's clock).
    pub at: Timestamp,
}

/// A request budget: at most `requests` per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in each window.
    pub requests: usize,
    /// The window.
    pub per: Duration,
}

/// A feature flag to seed: on for everyone by default, as a simple release toggle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FeatureFlagSpec {
    /// The flag's key (what SDKs ask for).
    pub key: String,
    /// The flag's name (PostHog's description field).
    #[serde(default)]
    pub name: String,
    /// Whether the flag is on at all.
    #[serde(default = "default_true")]
    pub active: bool,
    /// The share of users the one release condition lets in, 0–100.
    #[serde(default = "default_rollout")]
    pub rollout_percentage: u8,
}

fn default_true() -> bool {
    true
}

fn default_rollout() -> u8 {
    100
}

impl FeatureFlagSpec {
    /// An active flag `key`, rolled out to everyone.
    pub fn new(key: impl Into<String>) -> Self {
        FeatureFlagSpec {
            key: key.into(),
            name: String::new(),
            active: true,
            rollout_percentage: 100,
        }
    }

    /// Sets the rollout percentage (0–100).
    pub fn rollout(mut self, percentage: u8) -> Self {
        self.rollout_percentage = percentage.min(100);
        self
    }

    /// Turns the flag off.
    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }
}

/// A stored feature flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureFlag {
    /// The flag's id.
    pub id: u64,
    /// The project it belongs to.
    pub project_id: u64,
    /// Its key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Whether it is on.
    pub active: bool,
    /// The rollout percentage of its one release condition.
    pub rollout_percentage: u8,
    /// Whether it was deleted (PostHog soft-deletes flags).
    pub deleted: bool,
    /// When it was made (the stand-in's clock).
    pub created_at: Timestamp,
}

/// A stored annotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// The annotation's id.
    pub id: u64,
    /// The project it belongs to.
    pub project_id: u64,
    /// Its text.
    pub content: String,
    /// The moment it marks, as sent.
    pub date_marker: Option<String>,
    /// When it was made (the stand-in's clock).
    pub created_at: Timestamp,
}
