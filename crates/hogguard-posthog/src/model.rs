//! What PostHog's private API answers, as typed values: key metadata, the key owner, project
//! secret API keys and activity-log rows. Unknown fields are ignored and most fields are
//! optional, because PostHog changes its serializers often.

use hogguard_secret::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::scope::Scope;

/// The wildcard scope: full access (and how PostHog shows legacy unscoped keys).
pub const WILDCARD_SCOPE: &str = "*";

/// Whether the allowed-scope patterns `allowed` cover the key scope `scope`, for
/// least-privilege policies: `*` covers everything, `*:read` any read scope, `*:write` any
/// scope, `object:write` both actions on the object (PostHog's write implies read) and
/// `object:read` only reading it. A key's own `*` is covered only by `*`.
pub fn scope_allowed(scope: &str, allowed: &[String]) -> bool {
    let parsed = scope.parse::<Scope>();
    allowed
        .iter()
        .any(|pattern| match (pattern.parse::<Scope>(), &parsed) {
            (Ok(pattern), Ok(scope)) => pattern.covers(scope),
            // A scope of a shape not known here is covered only by `*` and by itself.
            _ => pattern == WILDCARD_SCOPE || pattern == scope,
        })
}

/// A personal API key's metadata, as `GET /api/personal_api_keys/@current/` returns it: what
/// a least-privilege audit needs. Never holds the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct PersonalKeyInfo {
    /// The key's id (not secret), as in `/api/personal_api_keys/{id}/`.
    pub id: String,
    /// The label its owner gave it.
    pub label: String,
    /// PostHog's mask of the value, `phx_...abcd`.
    #[serde(default)]
    pub mask_value: Option<String>,
    /// When it was made (ISO 8601, as PostHog renders it).
    pub created_at: String,
    /// When it last authenticated; PostHog updates this at most hourly.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// When it was last rolled.
    #[serde(default)]
    pub last_rolled_at: Option<String>,
    /// The owner's user id.
    pub user_id: u64,
    /// Its scopes; `["*"]` for full access and for legacy unscoped keys.
    #[serde(default, deserialize_with = "scopes_or_wildcard")]
    pub scopes: Vec<String>,
    /// The projects it is restricted to, if any.
    #[serde(default)]
    pub scoped_teams: Option<Vec<u64>>,
    /// The organisations (UUIDs) it is restricted to, if any.
    #[serde(default)]
    pub scoped_organizations: Option<Vec<String>>,
}

impl PersonalKeyInfo {
    /// Whether the key's scopes allow `scope` by PostHog's rules: `*` allows everything and
    /// `X:write` also allows `X:read`.
    pub fn grants(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| {
            held == WILDCARD_SCOPE
                || held == scope
                || scope
                    .strip_suffix(":read")
                    .is_some_and(|object| held.strip_suffix(":write") == Some(object))
        })
    }

    /// The first scope that lets the key change something: `*` or an `<object>:write`.
    pub fn first_write_scope(&self) -> Option<&str> {
        self.scopes
            .iter()
            .map(String::as_str)
            .find(|scope| *scope == WILDCARD_SCOPE || scope.ends_with(":write"))
    }
}

/// PostHog shows empty or missing scopes as `["*"]` (legacy keys may do anything); a `null`
/// from another version means the same.
fn scopes_or_wildcard<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let scopes = Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(if scopes.is_empty() {
        vec![WILDCARD_SCOPE.to_owned()]
    } else {
        scopes
    })
}

/// A user as PostHog's basic user serializer shows one (key creators, activity-log actors).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct UserBasic {
    /// The numeric id.
    pub id: u64,
    /// The UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// The login email.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
}

/// The key's owner, as `GET /api/users/@me/` returns them (a subset of the fields).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// Who the user is: the fields the basic serializer shows too.
    #[serde(flatten)]
    pub basic: UserBasic,
    /// The user's current project.
    #[serde(default)]
    pub team: Option<ProjectBasic>,
    /// The organisations the user belongs to.
    #[serde(default)]
    pub organizations: Vec<OrganizationBasic>,
}

/// A project (PostHog "team") as the user serializer shows it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ProjectBasic {
    /// The project id used in `/api/projects/{id}/`.
    pub id: u64,
    /// The project's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// An organisation as the user serializer shows it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct OrganizationBasic {
    /// The organisation's UUID.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A project secret API key's metadata (`ProjectSecretAPIKeySerializer` without `value`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ProjectSecretKeyInfo {
    /// The key's id (not secret).
    pub id: String,
    /// Its label, unique per project.
    pub label: String,
    /// PostHog's mask of the value, `phs_...abcd`.
    #[serde(default)]
    pub mask_value: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// Who made it.
    #[serde(default)]
    pub created_by: Option<UserBasic>,
    /// When it last authenticated.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// When it was last rolled.
    #[serde(default)]
    pub last_rolled_at: Option<String>,
    /// Its scopes (PostHog allows `endpoint:read` and `feature_flag:read`).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A project secret API key just created or rolled: its metadata and its new value, which
/// PostHog shows only this once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewProjectSecretKey {
    /// The key's metadata after the change.
    pub info: ProjectSecretKeyInfo,
    /// The new value.
    pub value: Secret,
}

impl NewProjectSecretKey {
    /// Reads a create or roll answer, moving `value` straight into a [`Secret`].
    pub(crate) fn from_answer(answer: WithValue) -> Result<NewProjectSecretKey, Error> {
        match answer.value {
            Some(value) => Ok(NewProjectSecretKey {
                info: answer.info,
                value: Secret::new(value),
            }),
            None => Err(Error::InvalidResponse {
                detail: "PostHog's answer holds no key value".to_owned(),
            }),
        }
    }
}

/// A serializer answer that may carry the new `value` (create and roll only).
#[derive(Deserialize)]
pub(crate) struct WithValue {
    #[serde(flatten)]
    info: ProjectSecretKeyInfo,
    value: Option<String>,
}

/// One page of a limit/offset-paginated list, or the plain array some PostHog versions give.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum ListPage<T> {
    Paginated {
        results: Vec<T>,
        next: Option<String>,
    },
    Plain(Vec<T>),
}

/// One activity-log (audit-log) row.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ActivityEntry {
    /// The row's id.
    pub id: String,
    /// Who acted; `None` for system actions such as a leaked-key roll.
    #[serde(default)]
    pub user: Option<UserBasic>,
    /// The organisation.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Whether staff acted while impersonating the user.
    #[serde(default)]
    pub was_impersonated: Option<bool>,
    /// Whether the system acted without a user.
    #[serde(default)]
    pub is_system: Option<bool>,
    /// The `x-posthog-client` header of the request that caused it.
    #[serde(default)]
    pub client: Option<String>,
    /// `created`, `updated`, `deleted`, `revoked`, ...
    pub activity: String,
    /// The changed object's id (a key's id for key rows).
    #[serde(default)]
    pub item_id: Option<String>,
    /// What kind of object changed: `PersonalAPIKey`, `ProjectSecretAPIKey`, `Team`, ...
    pub scope: String,
    /// What changed.
    #[serde(default)]
    pub detail: ActivityDetail,
    /// When (ISO 8601).
    pub created_at: String,
}

/// The `detail` of an activity-log row.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ActivityDetail {
    /// The object's name or label.
    #[serde(default)]
    pub name: Option<String>,
    /// Field changes, e.g. `mask_value` before and after a roll.
    #[serde(default)]
    pub changes: Option<Vec<ActivityChange>>,
    /// Extra context, e.g. the key owner and location for personal-key rows.
    #[serde(default)]
    pub context: Option<Value>,
}

/// One field change in an activity-log row.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ActivityChange {
    /// `changed`, `created` or `deleted`.
    pub action: String,
    /// The field, e.g. `mask_value`.
    #[serde(default)]
    pub field: Option<String>,
    /// The old value.
    #[serde(default)]
    pub before: Option<Value>,
    /// The new value.
    #[serde(default)]
    pub after: Option<Value>,
}

/// Filters for reading the activity log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityLogQuery {
    /// Only rows of this scope (`PersonalAPIKey`, `ProjectSecretAPIKey`, ...).
    pub scope: Option<String>,
    /// Only rows about this object id.
    pub item_id: Option<String>,
    /// Also return the organisation's rows that belong to no project (personal keys not
    /// restricted to projects are logged there).
    pub include_organization_scoped: bool,
    /// Rows per page (PostHog: 100 by default, at most 1000).
    pub page_size: Option<u32>,
}

/// One page of the activity log, newest first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ActivityLogPage {
    /// The rows.
    pub entries: Vec<ActivityEntry>,
    /// The cursor of the next (older) page, if there is one.
    pub next_cursor: Option<String>,
}

/// A cursor-paginated activity-log answer.
#[derive(Deserialize)]
pub(crate) struct CursorPage {
    pub(crate) results: Vec<ActivityEntry>,
    pub(crate) next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_patterns_cover_what_they_say() {
        let patterns = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let read_only = patterns(&["*:read"]);
        assert!(scope_allowed("insight:read", &read_only));
        assert!(!scope_allowed("insight:write", &read_only));
        assert!(!scope_allowed("*", &read_only));
        let flags = patterns(&["feature_flag:write", "insight:read"]);
        assert!(scope_allowed("feature_flag:read", &flags));
        assert!(scope_allowed("feature_flag:write", &flags));
        assert!(!scope_allowed("insight:write", &flags));
        assert!(!scope_allowed("person:read", &flags));
        assert!(scope_allowed("*", &patterns(&["*"])));
        assert!(scope_allowed("person:write", &patterns(&["*:write"])));
    }

    fn key_with(scopes: &[&str]) -> PersonalKeyInfo {
        serde_json::from_value(serde_json::json!({
            "id": "k1", "label": "ci", "value": null, "mask_value": "phx_...abcd",
            "created_at": "2025-01-01T00:00:00Z", "last_used_at": null, "user_id": 7,
            "scopes": scopes, "scoped_teams": null, "scoped_organizations": null,
            "last_rolled_at": null
        }))
        .unwrap()
    }

    #[test]
    fn write_implies_read_and_wildcard_allows_all() {
        let key = key_with(&["project:write", "user:read"]);
        assert!(key.grants("project:read"));
        assert!(key.grants("project:write"));
        assert!(key.grants("user:read"));
        assert!(!key.grants("user:write"));
        assert!(!key.grants("insight:read"));
        assert_eq!(key.first_write_scope(), Some("project:write"));
        let everything = key_with(&["*"]);
        assert!(everything.grants("feature_flag:write"));
        assert_eq!(everything.first_write_scope(), Some("*"));
        assert_eq!(key_with(&["user:read"]).first_write_scope(), None);
    }

    #[test]
    fn empty_scopes_mean_wildcard() {
        assert_eq!(key_with(&[]).scopes, vec!["*"]);
        let null_scopes: PersonalKeyInfo = serde_json::from_str(
            r#"{"id":"k","label":"l","created_at":"t","user_id":1,"scopes":null}"#,
        )
        .unwrap();
        assert_eq!(null_scopes.scopes, vec!["*"]);
    }

    #[test]
    fn new_key_value_moves_into_a_secret() {
        let answer: WithValue = serde_json::from_str(
            r#"{"id":"s1","label":"flags","value":"phs_NewValueNewValueNewValue","mask_value":"phs_...alue","created_at":"t","created_by":null,"last_used_at":null,"last_rolled_at":null,"scopes":["feature_flag:read"]}"#,
        )
        .unwrap();
        let key = NewProjectSecretKey::from_answer(answer).unwrap();
        assert_eq!(key.value.expose(), "phs_NewValueNewValueNewValue");
        assert_eq!(key.info.scopes, vec!["feature_flag:read"]);
        assert!(!format!("{key:?}").contains("NewValueNewValue"));

        let without: WithValue =
            serde_json::from_str(r#"{"id":"s1","label":"f","created_at":"t","value":null}"#)
                .unwrap();
        assert!(matches!(
            NewProjectSecretKey::from_answer(without),
            Err(Error::InvalidResponse { .. })
        ));
    }

    #[test]
    fn lists_may_be_pages_or_arrays() {
        let page: ListPage<u32> =
            serde_json::from_str(r#"{"count":3,"next":"n","previous":null,"results":[1,2]}"#)
                .unwrap();
        assert!(
            matches!(page, ListPage::Paginated { results, next: Some(_) } if results == [1, 2])
        );
        let plain: ListPage<u32> = serde_json::from_str("[3]").unwrap();
        assert!(matches!(plain, ListPage::Plain(items) if items == [3]));
    }
}
