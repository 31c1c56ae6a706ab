//! Serializer output: the JSON shapes of PostHog's serializers, fields in their order.

use serde::Serialize;

use super::model::{ActivityDetail, ActivityEntry, PersonalKey, ProjectSecretKey};
use super::time::Timestamp;
use super::world::{User, World};

/// `PersonalAPIKeySerializer`.
#[derive(Serialize)]
pub(crate) struct PersonalKeyRepr<'a> {
    id: &'a str,
    label: &'a str,
    value: Option<&'a str>,
    mask_value: &'a str,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    user_id: u64,
    scopes: Vec<&'a str>,
    scoped_teams: Option<&'a [u64]>,
    scoped_organizations: Option<&'a [String]>,
    last_rolled_at: Option<Timestamp>,
}

/// `value` is the raw key, given only in create and roll responses.
pub(crate) fn personal_key<'a>(
    key: &'a PersonalKey,
    value: Option<&'a str>,
) -> PersonalKeyRepr<'a> {
    // `to_representation` shows empty (legacy) scopes as `["*"]`.
    let scopes = if key.scopes.is_empty() {
        vec!["*"]
    } else {
        key.scopes.iter().map(String::as_str).collect()
    };
    PersonalKeyRepr {
        id: &key.id,
        label: &key.label,
        value,
        mask_value: &key.mask_value,
        created_at: key.created_at,
        last_used_at: key.last_used_at,
        user_id: key.user_id,
        scopes,
        scoped_teams: key.scoped_teams.as_deref(),
        scoped_organizations: key.scoped_organizations.as_deref(),
        last_rolled_at: key.last_rolled_at,
    }
}

/// `UserBasicSerializer`.
#[derive(Serialize)]
pub(crate) struct UserBasicRepr<'a> {
    id: u64,
    uuid: &'a str,
    distinct_id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    is_email_verified: bool,
    hedgehog_config: Option<()>,
    role_at_organization: Option<()>,
}

pub(crate) fn user_basic(user: &User) -> UserBasicRepr<'_> {
    UserBasicRepr {
        id: user.id,
        uuid: &user.uuid,
        distinct_id: &user.distinct_id,
        first_name: &user.first_name,
        last_name: &user.last_name,
        email: &user.email,
        is_email_verified: true,
        hedgehog_config: None,
        role_at_organization: None,
    }
}

/// `ProjectSecretAPIKeySerializer`.
#[derive(Serialize)]
pub(crate) struct ProjectSecretKeyRepr<'a> {
    id: &'a str,
    label: &'a str,
    value: Option<&'a str>,
    mask_value: &'a str,
    created_at: Timestamp,
    created_by: Option<UserBasicRepr<'a>>,
    last_used_at: Option<Timestamp>,
    last_rolled_at: Option<Timestamp>,
    scopes: &'a [String],
}

pub(crate) fn project_secret_key<'a>(
    world: &'a World,
    key: &'a ProjectSecretKey,
    value: Option<&'a str>,
) -> ProjectSecretKeyRepr<'a> {
    ProjectSecretKeyRepr {
        id: &key.id,
        label: &key.label,
        value,
        mask_value: &key.mask_value,
        created_at: key.created_at,
        created_by: key.created_by.and_then(|id| world.user(id)).map(user_basic),
        last_used_at: key.last_used_at,
        last_rolled_at: key.last_rolled_at,
        scopes: &key.scopes,
    }
}

/// `ActivityLogSerializer` (the model without `team_id`, plus `user` and `unread`).
#[derive(Serialize)]
pub(crate) struct ActivityRepr<'a> {
    id: &'a str,
    user: Option<UserBasicRepr<'a>>,
    unread: bool,
    organization_id: &'a str,
    was_impersonated: bool,
    is_system: bool,
    client: Option<&'a str>,
    activity: &'a str,
    item_id: &'a str,
    scope: &'a str,
    detail: &'a ActivityDetail,
    created_at: Timestamp,
}

pub(crate) fn activity<'a>(world: &'a World, entry: &'a ActivityEntry) -> ActivityRepr<'a> {
    ActivityRepr {
        id: &entry.id,
        user: entry.user_id.and_then(|id| world.user(id)).map(user_basic),
        // Callers have no notification bookmark, so every row is unread.
        unread: true,
        organization_id: &entry.organization_id,
        was_impersonated: entry.was_impersonated,
        is_system: entry.is_system,
        client: entry.client.as_deref(),
        activity: &entry.activity,
        item_id: &entry.item_id,
        scope: &entry.scope,
        detail: &entry.detail,
        created_at: entry.created_at,
    }
}

/// DRF's `LimitOffsetPagination` page.
#[derive(Serialize)]
pub(crate) struct LimitOffsetPage<T> {
    pub(crate) count: usize,
    pub(crate) next: Option<String>,
    pub(crate) previous: Option<String>,
    pub(crate) results: Vec<T>,
}

/// DRF's `CursorPagination` page.
#[derive(Serialize)]
pub(crate) struct CursorPage<T> {
    pub(crate) next: Option<String>,
    pub(crate) previous: Option<String>,
    pub(crate) results: Vec<T>,
}
