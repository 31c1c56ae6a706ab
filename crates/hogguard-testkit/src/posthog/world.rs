//! The stand-in's state, and what changes it besides the HTTP API: seeding, the dashboard
//! actions of a logged-in person, activity logging and request admission.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::faults::{Fault, FaultAction};
use super::http::{self, ApiRequest};
use super::model::{
    ActivityChange, ActivityContext, ActivityDetail, ActivityEntry, Annotation, CapturedEvent,
    FeatureFlag, FeatureFlagSpec, MembershipLevel, OAuthTokenKind, OAuthTokenSpec, PersonalKey,
    PersonalKeySpec, ProjectSecretKey, ProjectSecretKeySpec, RateLimit, Rejection, RequestRecord,
    SeededKey, SeededProject, SeededUser, UserSpec,
};
use super::scopes;
use super::time::Timestamp;
use super::tokens::{self, hash_key_value, mask_key_value};
use crate::keys::{self, Prefix};

/// `MAX_API_KEYS_PER_USER`.
pub(crate) const MAX_PERSONAL_KEYS_PER_USER: usize = 10;

/// An organisation.
pub(crate) struct Organization {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// A user and the organisations they belong to.
pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) uuid: String,
    pub(crate) distinct_id: String,
    pub(crate) email: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) is_active: bool,
    pub(crate) memberships: Vec<(String, MembershipLevel)>,
    pub(crate) current_project_id: Option<u64>,
    pub(crate) date_joined: Timestamp,
}

impl User {
    /// Django's `get_full_name()`.
    pub(crate) fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_owned()
    }

    /// The user's level in `organization_id`, if a member.
    pub(crate) fn level_in(&self, organization_id: &str) -> Option<MembershipLevel> {
        self.memberships
            .iter()
            .find(|(id, _)| id == organization_id)
            .map(|(_, level)| *level)
    }
}

/// A project (PostHog team) with its tokens; team secret tokens are stored in plaintext, as
/// PostHog stores them.
pub(crate) struct Project {
    pub(crate) id: u64,
    pub(crate) organization_id: String,
    pub(crate) name: String,
    pub(crate) api_token: String,
    pub(crate) secret_api_token: Option<String>,
    pub(crate) secret_api_token_backup: Option<String>,
}

/// An OAuth access or refresh token, stored in plaintext as django-oauth-toolkit does.
pub(crate) struct OAuthToken {
    pub(crate) value: String,
    pub(crate) kind: OAuthTokenKind,
    pub(crate) user_id: u64,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: Timestamp,
    pub(crate) revoked: bool,
}

/// Who caused a change, for the activity log.
#[derive(Clone, Default)]
pub(crate) struct Actor {
    pub(crate) user_id: Option<u64>,
    pub(crate) client: Option<String>,
}

impl Actor {
    /// A person acting in the web app.
    pub(crate) fn dashboard(user_id: u64) -> Self {
        Actor {
            user_id: Some(user_id),
            client: None,
        }
    }

    /// PostHog itself, e.g. rolling a key reported as leaked.
    pub(crate) fn system() -> Self {
        Actor::default()
    }
}

/// Everything the stand-in knows.
pub(crate) struct World {
    pub(crate) now: Timestamp,
    pub(crate) base_url: String,
    pub(crate) organizations: Vec<Organization>,
    pub(crate) users: Vec<User>,
    pub(crate) projects: Vec<Project>,
    pub(crate) personal_keys: Vec<PersonalKey>,
    pub(crate) project_secret_keys: Vec<ProjectSecretKey>,
    pub(crate) oauth_tokens: Vec<OAuthToken>,
    pub(crate) feature_flags: Vec<FeatureFlag>,
    pub(crate) annotations: Vec<Annotation>,
    pub(crate) events: Vec<CapturedEvent>,
    pub(crate) activity: Vec<ActivityEntry>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) revoke_throttle: Option<RateLimit>,
    pub(crate) revoke_history: HashMap<IpAddr, Vec<Timestamp>>,
    next_user_id: u64,
    next_project_id: u64,
    pub(crate) next_object_id: u64,
}

impl World {
    pub(crate) fn new(
        now: Timestamp,
        base_url: String,
        revoke_throttle: Option<RateLimit>,
    ) -> Self {
        World {
            now,
            base_url,
            organizations: Vec::new(),
            users: Vec::new(),
            projects: Vec::new(),
            personal_keys: Vec::new(),
            project_secret_keys: Vec::new(),
            oauth_tokens: Vec::new(),
            feature_flags: Vec::new(),
            annotations: Vec::new(),
            events: Vec::new(),
            activity: Vec::new(),
            faults: Vec::new(),
            requests: Vec::new(),
            revoke_throttle,
            revoke_history: HashMap::new(),
            next_user_id: 1,
            next_project_id: 1,
            next_object_id: 1,
        }
    }

    pub(crate) fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|user| user.id == id)
    }

    pub(crate) fn project(&self, id: u64) -> Option<&Project> {
        self.projects.iter().find(|project| project.id == id)
    }

    /// The project whose public `phc_` token is `token`.
    pub(crate) fn project_by_token(&self, token: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|project| project.api_token == token)
    }

    pub(crate) fn organization(&self, id: &str) -> Option<&Organization> {
        self.organizations.iter().find(|org| org.id == id)
    }

    /// The user's current project: the chosen one, else the first of their first organisation.
    pub(crate) fn current_project_of(&self, user: &User) -> Option<u64> {
        user.current_project_id.or_else(|| {
            let (organization_id, _) = user.memberships.first()?;
            self.projects
                .iter()
                .find(|project| &project.organization_id == organization_id)
                .map(|project| project.id)
        })
    }

    pub(crate) fn add_organization(&mut self, name: &str) -> String {
        let id = tokens::uuid4();
        self.organizations.push(Organization {
            id: id.clone(),
            name: name.to_owned(),
        });
        id
    }

    pub(crate) fn add_project(
        &mut self,
        organization_id: &str,
        name: &str,
    ) -> Result<SeededProject, String> {
        if self.organization(organization_id).is_none() {
            return Err(format!("no organization {organization_id}"));
        }
        let id = self.next_project_id;
        self.next_project_id += 1;
        let api_token = tokens::new_token(Prefix::Project);
        self.projects.push(Project {
            id,
            organization_id: organization_id.to_owned(),
            name: name.to_owned(),
            api_token: api_token.clone(),
            secret_api_token: None,
            secret_api_token_backup: None,
        });
        Ok(SeededProject {
            id,
            organization_id: organization_id.to_owned(),
            name: name.to_owned(),
            api_token,
        })
    }

    /// `Team.rotate_secret_token_and_save`: a new primary; the old primary becomes the backup,
    /// and both stay valid.
    pub(crate) fn rotate_team_secret_token(&mut self, project_id: u64) -> Result<String, String> {
        let project = self
            .projects
            .iter_mut()
            .find(|project| project.id == project_id)
            .ok_or_else(|| format!("no project {project_id}"))?;
        let value = tokens::new_token(Prefix::Secret);
        project.secret_api_token_backup = project.secret_api_token.replace(value.clone());
        Ok(value)
    }

    /// A fresh id for a flag or an annotation.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_object_id;
        self.next_object_id += 1;
        id
    }

    pub(crate) fn add_feature_flag(
        &mut self,
        project_id: u64,
        spec: FeatureFlagSpec,
    ) -> Result<FeatureFlag, String> {
        if self.project(project_id).is_none() {
            return Err(format!("no project {project_id}"));
        }
        let flag = FeatureFlag {
            id: self.next_id(),
            project_id,
            key: spec.key,
            name: spec.name,
            active: spec.active,
            rollout_percentage: spec.rollout_percentage.min(100),
            deleted: false,
            created_at: self.now,
        };
        self.feature_flags.push(flag.clone());
        Ok(flag)
    }

    pub(crate) fn add_user(&mut self, spec: UserSpec) -> Result<SeededUser, String> {
        for membership in &spec.memberships {
            if self.organization(&membership.organization_id).is_none() {
                return Err(format!("no organization {}", membership.organization_id));
            }
        }
        if let Some(project_id) = spec.current_project_id
            && self.project(project_id).is_none()
        {
            return Err(format!("no project {project_id}"));
        }
        let id = self.next_user_id;
        self.next_user_id += 1;
        let uuid = tokens::uuid4();
        self.users.push(User {
            id,
            uuid: uuid.clone(),
            distinct_id: tokens::random_id(),
            email: spec.email.clone(),
            first_name: spec.first_name,
            last_name: spec.last_name,
            is_active: spec.is_active,
            memberships: spec
                .memberships
                .into_iter()
                .map(|m| (m.organization_id, m.level))
                .collect(),
            current_project_id: spec.current_project_id,
            date_joined: self.now,
        });
        Ok(SeededUser {
            id,
            uuid,
            email: spec.email,
        })
    }

    /// Stores a personal key as if it had always existed: no validation beyond the owner
    /// existing, and no activity-log row.
    pub(crate) fn add_personal_key(
        &mut self,
        user_id: u64,
        spec: PersonalKeySpec,
    ) -> Result<SeededKey, String> {
        if self.user(user_id).is_none() {
            return Err(format!("no user {user_id}"));
        }
        Ok(self.insert_personal_key(user_id, spec).0)
    }

    fn insert_personal_key(&mut self, user_id: u64, spec: PersonalKeySpec) -> (SeededKey, usize) {
        let value = if spec.unprefixed {
            keys::legacy_personal()
        } else {
            tokens::new_token(Prefix::Personal)
        };
        let id = tokens::random_id();
        self.personal_keys.push(PersonalKey {
            id: id.clone(),
            user_id,
            label: spec.label,
            secure_value: hash_key_value(&value),
            mask_value: mask_key_value(&value),
            scopes: spec.scopes,
            scoped_teams: spec.scoped_teams,
            scoped_organizations: spec.scoped_organizations,
            created_at: spec.created_at.unwrap_or(self.now),
            last_used_at: spec.last_used_at,
            last_rolled_at: spec.last_rolled_at,
        });
        (SeededKey { id, value }, self.personal_keys.len() - 1)
    }

    /// Stores a project secret key without validation or activity-log row.
    pub(crate) fn add_project_secret_key(
        &mut self,
        project_id: u64,
        spec: ProjectSecretKeySpec,
    ) -> Result<SeededKey, String> {
        if self.project(project_id).is_none() {
            return Err(format!("no project {project_id}"));
        }
        if let Some(user_id) = spec.created_by
            && self.user(user_id).is_none()
        {
            return Err(format!("no user {user_id}"));
        }
        let created_at = spec.created_at.unwrap_or(self.now);
        Ok(self.insert_project_secret_key(
            project_id,
            spec.label,
            spec.scopes,
            spec.created_by,
            created_at,
        ))
    }

    pub(crate) fn insert_project_secret_key(
        &mut self,
        project_id: u64,
        label: String,
        scopes: Vec<String>,
        created_by: Option<u64>,
        created_at: Timestamp,
    ) -> SeededKey {
        let value = tokens::new_token(Prefix::Secret);
        let id = tokens::random_id();
        self.project_secret_keys.push(ProjectSecretKey {
            id: id.clone(),
            project_id,
            label,
            secure_value: hash_key_value(&value),
            mask_value: mask_key_value(&value),
            scopes,
            created_by,
            created_at,
            last_used_at: None,
            last_rolled_at: None,
        });
        SeededKey { id, value }
    }

    pub(crate) fn add_oauth_token(
        &mut self,
        user_id: u64,
        spec: OAuthTokenSpec,
    ) -> Result<String, String> {
        if self.user(user_id).is_none() {
            return Err(format!("no user {user_id}"));
        }
        let (prefix, lifetime) = match spec.kind {
            OAuthTokenKind::Access => (Prefix::OAuthAccess, Duration::from_secs(3600)),
            OAuthTokenKind::Refresh => (Prefix::OAuthRefresh, Duration::from_secs(2_592_000)),
        };
        let value = tokens::new_token(prefix);
        self.oauth_tokens.push(OAuthToken {
            value: value.clone(),
            kind: spec.kind,
            user_id,
            scopes: spec.scopes,
            expires_at: spec.expires_at.unwrap_or(self.now.plus(lifetime)),
            revoked: false,
        });
        Ok(value)
    }

    /// What `POST /api/personal_api_keys/` does for a logged-in person: the serializer's field
    /// validation in field order, the 10-key cap, then a `created` activity row.
    pub(crate) fn dashboard_create_personal_key(
        &mut self,
        user_id: u64,
        spec: PersonalKeySpec,
    ) -> Result<SeededKey, Rejection> {
        let reject = |response: http::ApiResponse| Rejection {
            status: response.status,
            body: String::from_utf8(response.body).expect("JSON is UTF-8"),
        };
        let Some(user) = self.user(user_id) else {
            return Err(reject(http::not_authenticated()));
        };
        if spec.label.trim().is_empty() {
            return Err(reject(http::validation_error(
                "blank",
                "This field may not be blank.",
                Some("label"),
            )));
        }
        if spec.label.chars().count() > 40 {
            return Err(reject(http::validation_error(
                "max_length",
                "Ensure this field has no more than 40 characters.",
                Some("label"),
            )));
        }
        if let Some(scope) = spec
            .scopes
            .iter()
            .find(|scope| !scopes::is_valid_personal_key_scope(scope))
        {
            return Err(reject(http::validation_error(
                "invalid",
                &format!("Invalid scope: {scope}"),
                Some("scopes"),
            )));
        }
        let member_of_all_teams = spec.scoped_teams.iter().flatten().all(|team| {
            self.project(*team)
                .is_some_and(|project| user.level_in(&project.organization_id).is_some())
        });
        if !member_of_all_teams {
            return Err(reject(http::validation_error(
                "invalid",
                "You must be a member of all teams that you are scoping the key to.",
                Some("scoped_teams"),
            )));
        }
        for organization_id in spec.scoped_organizations.iter().flatten() {
            if !tokens::is_uuid(organization_id) {
                return Err(reject(http::validation_error(
                    "invalid",
                    "Invalid organization UUID",
                    Some("scoped_organizations"),
                )));
            }
            if user.level_in(organization_id).is_none() {
                return Err(reject(http::validation_error(
                    "invalid",
                    "You must be a member of all organizations that you are scoping the key to.",
                    Some("scoped_organizations"),
                )));
            }
        }
        let owned = self
            .personal_keys
            .iter()
            .filter(|key| key.user_id == user_id)
            .count();
        if owned >= MAX_PERSONAL_KEYS_PER_USER {
            return Err(reject(http::validation_error(
                "invalid",
                &format!(
                    "You can only have {MAX_PERSONAL_KEYS_PER_USER} personal API keys. Remove an existing key before creating a new one."
                ),
                None,
            )));
        }
        let spec = PersonalKeySpec {
            created_at: None,
            last_used_at: None,
            last_rolled_at: None,
            ..spec
        };
        let (seeded, index) = self.insert_personal_key(user_id, spec);
        let key = self.personal_keys[index].clone();
        self.log_personal_key(
            &key,
            "created",
            &Actor::dashboard(user_id),
            Some(Vec::new()),
        );
        Ok(seeded)
    }

    /// `PersonalAPIKeySerializer.roll`: a new value, mask and `last_rolled_at`; the old value
    /// stops authenticating at once. Logs `updated` with the mask change.
    pub(crate) fn roll_personal_key(&mut self, key_id: &str, actor: &Actor) -> Option<String> {
        let index = self.personal_keys.iter().position(|key| key.id == key_id)?;
        let value = tokens::new_token(Prefix::Personal);
        let now = self.now;
        let key = &mut self.personal_keys[index];
        let before = std::mem::replace(&mut key.mask_value, mask_key_value(&value));
        key.secure_value = hash_key_value(&value);
        key.last_rolled_at = Some(now);
        let key = key.clone();
        let change = mask_change("PersonalAPIKey", before, key.mask_value.clone());
        self.log_personal_key(&key, "updated", actor, Some(vec![change]));
        Some(value)
    }

    /// Deletes a personal key as its owner would in the web app, logging `deleted`.
    pub(crate) fn dashboard_delete_personal_key(&mut self, key_id: &str) -> bool {
        let Some(index) = self.personal_keys.iter().position(|key| key.id == key_id) else {
            return false;
        };
        let key = self.personal_keys.remove(index);
        self.log_personal_key(&key, "deleted", &Actor::dashboard(key.user_id), None);
        true
    }

    /// `log_personal_key_activity`: one row per scoped team, else per scoped organisation, else
    /// per organisation the owner belongs to.
    pub(crate) fn log_personal_key(
        &mut self,
        key: &PersonalKey,
        activity: &str,
        actor: &Actor,
        changes: Option<Vec<ActivityChange>>,
    ) {
        let Some(owner) = self.user(key.user_id) else {
            return;
        };
        let locations: Vec<(String, Option<u64>)> =
            if let Some(teams) = key.scoped_teams.as_ref().filter(|teams| !teams.is_empty()) {
                teams
                    .iter()
                    .filter_map(|team| self.project(*team))
                    .map(|project| (project.organization_id.clone(), Some(project.id)))
                    .collect()
            } else if let Some(organizations) = key
                .scoped_organizations
                .as_ref()
                .filter(|organizations| !organizations.is_empty())
            {
                organizations
                    .iter()
                    .map(|org| (org.clone(), None))
                    .collect()
            } else {
                owner
                    .memberships
                    .iter()
                    .map(|(org, _)| (org.clone(), None))
                    .collect()
            };
        let rows: Vec<ActivityEntry> = locations
            .into_iter()
            .map(|(organization_id, team_id)| {
                let organization_name = self
                    .organization(&organization_id)
                    .map_or("Unknown Organization", |org| org.name.as_str())
                    .to_owned();
                let team_name = team_id
                    .and_then(|team| self.project(team))
                    .map_or("Unknown Project", |project| project.name.as_str())
                    .to_owned();
                ActivityEntry {
                    id: tokens::uuid4(),
                    team_id,
                    organization_id,
                    user_id: actor.user_id,
                    was_impersonated: false,
                    is_system: actor.user_id.is_none(),
                    client: actor.client.clone(),
                    activity: activity.to_owned(),
                    item_id: key.id.clone(),
                    scope: "PersonalAPIKey".to_owned(),
                    detail: ActivityDetail {
                        changes: changes.clone(),
                        trigger: None,
                        name: Some(key.label.clone()),
                        short_id: None,
                        kind: None,
                        context: Some(ActivityContext {
                            user_id: owner.id,
                            user_email: owner.email.clone(),
                            user_name: owner.full_name(),
                            organization_name,
                            team_name,
                        }),
                    },
                    created_at: self.now,
                }
            })
            .collect();
        self.activity.extend(rows);
    }

    /// One project-level `ProjectSecretAPIKey` row.
    pub(crate) fn log_project_secret_key(
        &mut self,
        key: &ProjectSecretKey,
        activity: &str,
        actor: &Actor,
        changes: Option<Vec<ActivityChange>>,
    ) {
        let Some(project) = self.project(key.project_id) else {
            return;
        };
        let row = ActivityEntry {
            id: tokens::uuid4(),
            team_id: Some(project.id),
            organization_id: project.organization_id.clone(),
            user_id: actor.user_id,
            was_impersonated: false,
            is_system: actor.user_id.is_none(),
            client: actor.client.clone(),
            activity: activity.to_owned(),
            item_id: key.id.clone(),
            scope: "ProjectSecretAPIKey".to_owned(),
            detail: ActivityDetail {
                changes,
                trigger: None,
                name: Some(key.label.clone()),
                short_id: None,
                kind: None,
                context: None,
            },
            created_at: self.now,
        };
        self.activity.push(row);
    }

    /// Whether `secret` authenticates here as any kind of credential.
    pub(crate) fn is_live(&self, secret: &str) -> bool {
        let hashed = hash_key_value(secret);
        self.personal_keys.iter().any(|key| {
            key.secure_value == hashed && self.user(key.user_id).is_some_and(|user| user.is_active)
        }) || self
            .project_secret_keys
            .iter()
            .any(|key| key.secure_value == hashed)
            || self.projects.iter().any(|project| {
                project.secret_api_token.as_deref() == Some(secret)
                    || project.secret_api_token_backup.as_deref() == Some(secret)
            })
            || self
                .oauth_tokens
                .iter()
                .any(|token| token.value == secret && !token.revoked && token.expires_at > self.now)
    }

    /// Records a request and takes the first matching fault, if any.
    pub(crate) fn admit(&mut self, request: &ApiRequest) -> Option<FaultAction> {
        let credential_sha256 = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| tokens::sha256_hex(token.trim()));
        let headers = request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    tokens::sha256_hex(&String::from_utf8_lossy(value.as_bytes())),
                )
            })
            .collect();
        self.requests.push(RequestRecord {
            method: request.method.to_string(),
            path: request.path.clone(),
            query: request.raw_query.clone(),
            credential_sha256,
            headers,
            at: self.now,
        });
        let index = self
            .faults
            .iter()
            .position(|fault| fault.matches(&request.path))?;
        let fault = &mut self.faults[index];
        fault.remaining -= 1;
        let action = fault.action.clone();
        if fault.remaining == 0 {
            self.faults.remove(index);
        }
        Some(action)
    }
}

/// The `mask_value` change a roll logs.
pub(crate) fn mask_change(scope: &str, before: String, after: String) -> ActivityChange {
    ActivityChange {
        kind: scope.to_owned(),
        action: "changed".to_owned(),
        field: Some("mask_value".to_owned()),
        before: Some(Value::String(before)),
        after: Some(Value::String(after)),
    }
}
