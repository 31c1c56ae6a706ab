//! `/api/projects/{id}/project_secret_api_keys/` (and the `/api/environments/{id}/` alias):
//! `ProjectSecretAPIKeyViewSet`, `scope_object = "project"` with `roll` as a write action, and
//! `TeamMemberStrictManagementPermission` (admins for anything but reads).

use hyper::Method;
use serde_json::{Map, Value};

use super::auth::ViewTeam;
use super::http::{self, ApiRequest, ApiResponse, Reply, char_field, json_object_body};
use super::model::{ActivityChange, MembershipLevel};
use super::repr::{self, LimitOffsetPage};
use super::scopes;
use super::tokens::{self, hash_key_value, mask_key_value};
use super::world::{Actor, World, mask_change};
use crate::keys::Prefix;

/// `MAX_PROJECT_SECRET_API_KEYS_PER_TEAM`.
const MAX_KEYS_PER_PROJECT: usize = 50;
/// The label's `max_length`.
const LABEL_MAX_LENGTH: usize = 40;
/// DRF's `PAGE_SIZE` in PostHog's settings.
const PAGE_SIZE: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    List,
    Create,
    Retrieve,
    Update { partial: bool },
    Destroy,
    Roll,
}

impl World {
    pub(crate) fn project_secret_api_keys(
        &mut self,
        request: &ApiRequest,
        raw_project_id: &str,
        rest: &[&str],
    ) -> Reply {
        let method = &request.method;
        let action = match rest {
            [] if method == Method::GET => Some(Action::List),
            [] if method == Method::POST => Some(Action::Create),
            [_] if method == Method::GET => Some(Action::Retrieve),
            [_] if method == Method::PUT => Some(Action::Update { partial: false }),
            [_] if method == Method::PATCH => Some(Action::Update { partial: true }),
            [_] if method == Method::DELETE => Some(Action::Destroy),
            [_, "roll"] if method == Method::POST => Some(Action::Roll),
            [] | [_] | [_, "roll"] => None,
            _ => return Err(http::not_found("Not found.")),
        };
        let principal = self.authenticate(request, true)?;
        let required = action.map(|action| match action {
            Action::List | Action::Retrieve => "project:read",
            _ => "project:write",
        });
        let project = self.resolve_project(raw_project_id);
        self.check_scopes(
            &principal,
            required,
            "project",
            &ViewTeam::Team(project.clone()),
        )?;
        let project = project?;
        let level = self.check_project_member(&principal, &project)?;
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && level < MembershipLevel::Admin {
            return Err(http::permission_denied(
                "You don't have sufficient permissions in the project.",
            ));
        }
        let Some(action) = action else {
            return Err(http::method_not_allowed(method));
        };
        let actor = Actor {
            user_id: Some(principal.user_id),
            client: request.header("x-posthog-client").map(str::to_owned),
        };
        let project_id = project.id;
        let key_index = match rest.first() {
            Some(key_id) => Some(
                self.project_secret_keys
                    .iter()
                    .position(|key| key.project_id == project_id && key.id == *key_id)
                    .ok_or_else(|| http::not_found("Not found."))?,
            ),
            None => None,
        };
        match (action, key_index) {
            (Action::List, _) => Ok(self.list_project_secret_keys(request, project_id)),
            (Action::Create, _) => self.create_project_secret_key(request, project_id, &actor),
            (Action::Retrieve, Some(index)) => Ok(ApiResponse::json(
                200,
                &repr::project_secret_key(self, &self.project_secret_keys[index], None),
            )),
            (Action::Update { partial }, Some(index)) => {
                self.update_project_secret_key(request, index, partial, &actor)
            }
            (Action::Destroy, Some(index)) => {
                let key = self.project_secret_keys.remove(index);
                self.log_project_secret_key(&key, "deleted", &actor, None);
                Ok(ApiResponse::empty(204))
            }
            (Action::Roll, Some(index)) => Ok(self.roll_project_secret_key(index, &actor)),
            (_, None) => Err(http::not_found("Not found.")),
        }
    }

    fn list_project_secret_keys(&self, request: &ApiRequest, project_id: u64) -> ApiResponse {
        let mut keys: Vec<(usize, &_)> = self
            .project_secret_keys
            .iter()
            .enumerate()
            .filter(|(_, key)| key.project_id == project_id)
            .collect();
        // `order_by("-created_at")`; the newest insertion first among equal times.
        keys.sort_by(|(a_index, a), (b_index, b)| {
            b.created_at.cmp(&a.created_at).then(b_index.cmp(a_index))
        });
        let limit = request
            .query_param("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .filter(|limit| *limit > 0)
            .unwrap_or(PAGE_SIZE);
        let offset = request
            .query_param("offset")
            .and_then(|offset| offset.parse::<usize>().ok())
            .unwrap_or(0);
        let count = keys.len();
        let link = |offset: Option<usize>| {
            let mut params: Vec<(String, String)> = request
                .query
                .iter()
                .filter(|(name, _)| name != "limit" && name != "offset")
                .cloned()
                .collect();
            params.push(("limit".to_owned(), limit.to_string()));
            if let Some(offset) = offset {
                params.push(("offset".to_owned(), offset.to_string()));
            }
            // DRF's `replace_query_param` re-encodes the parameters sorted.
            params.sort();
            let query: Vec<String> = params
                .iter()
                .map(|(name, value)| {
                    format!(
                        "{}={}",
                        http::percent_encode(name),
                        http::percent_encode(value)
                    )
                })
                .collect();
            format!("{}{}?{}", self.base_url, request.path, query.join("&"))
        };
        let next = (offset + limit < count).then(|| link(Some(offset + limit)));
        let previous = (offset > 0).then(|| {
            if offset <= limit {
                link(None)
            } else {
                link(Some(offset - limit))
            }
        });
        let results = keys
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, key)| repr::project_secret_key(self, key, None))
            .collect();
        ApiResponse::json(
            200,
            &LimitOffsetPage {
                count,
                next,
                previous,
                results,
            },
        )
    }

    fn create_project_secret_key(
        &mut self,
        request: &ApiRequest,
        project_id: u64,
        actor: &Actor,
    ) -> Reply {
        let data = json_object_body(request)?;
        let label = char_field(&data, "label", LABEL_MAX_LENGTH, true)?.unwrap_or_default();
        let scopes = scopes_field(&data, true)?.unwrap_or_default();
        let existing = self
            .project_secret_keys
            .iter()
            .filter(|key| key.project_id == project_id);
        if existing.clone().count() >= MAX_KEYS_PER_PROJECT {
            return Err(http::validation_error(
                "invalid",
                &format!(
                    "You can only have {MAX_KEYS_PER_PROJECT} project secret API keys. Remove an existing key before creating a new one."
                ),
                None,
            ));
        }
        if existing.clone().any(|key| key.label == label) {
            return Err(http::validation_error(
                "invalid",
                &format!("Project secret API key with label '{label}' already exists."),
                None,
            ));
        }
        let created =
            self.insert_project_secret_key(project_id, label, scopes, actor.user_id, self.now);
        let index = self.project_secret_keys.len() - 1;
        let key = self.project_secret_keys[index].clone();
        self.log_project_secret_key(&key, "created", actor, Some(Vec::new()));
        Ok(ApiResponse::json(
            201,
            &repr::project_secret_key(self, &self.project_secret_keys[index], Some(&created.value)),
        ))
    }

    fn update_project_secret_key(
        &mut self,
        request: &ApiRequest,
        index: usize,
        partial: bool,
        actor: &Actor,
    ) -> Reply {
        let data = json_object_body(request)?;
        let label = char_field(&data, "label", LABEL_MAX_LENGTH, !partial)?;
        let scopes = scopes_field(&data, !partial)?;
        let key = &self.project_secret_keys[index];
        if let Some(label) = &label {
            let taken = self.project_secret_keys.iter().any(|other| {
                other.project_id == key.project_id && other.id != key.id && &other.label == label
            });
            if taken {
                // `update` does not catch the `unique_team_label` IntegrityError `create`
                // turns into a validation error, so PostHog answers 500 here.
                return Err(http::server_error());
            }
        }
        let mut changes = Vec::new();
        let key = &mut self.project_secret_keys[index];
        if let Some(label) = label.filter(|label| *label != key.label) {
            changes.push(field_change(
                "label",
                Value::from(key.label.clone()),
                Value::from(label.clone()),
            ));
            key.label = label;
        }
        if let Some(scopes) = scopes.filter(|scopes| *scopes != key.scopes) {
            changes.push(field_change(
                "scopes",
                Value::from(key.scopes.clone()),
                Value::from(scopes.clone()),
            ));
            key.scopes = scopes;
        }
        let key = key.clone();
        if !changes.is_empty() {
            self.log_project_secret_key(&key, "updated", actor, Some(changes));
        }
        Ok(ApiResponse::json(
            200,
            &repr::project_secret_key(self, &self.project_secret_keys[index], None),
        ))
    }

    /// `ProjectSecretAPIKeySerializer.roll`: new value, mask and `last_rolled_at`; the old
    /// value stops working at once.
    fn roll_project_secret_key(&mut self, index: usize, actor: &Actor) -> ApiResponse {
        let value = self.roll_project_secret_key_value(index, actor);
        ApiResponse::json(
            200,
            &repr::project_secret_key(self, &self.project_secret_keys[index], Some(&value)),
        )
    }

    /// Rolls the key at `index`, logging `updated` with the mask change; returns the new value.
    pub(crate) fn roll_project_secret_key_value(&mut self, index: usize, actor: &Actor) -> String {
        let value = tokens::new_token(Prefix::Secret);
        let now = self.now;
        let key = &mut self.project_secret_keys[index];
        let before = std::mem::replace(&mut key.mask_value, mask_key_value(&value));
        key.secure_value = hash_key_value(&value);
        key.last_rolled_at = Some(now);
        let key = key.clone();
        let change = mask_change("ProjectSecretAPIKey", before, key.mask_value.clone());
        self.log_project_secret_key(&key, "updated", actor, Some(vec![change]));
        value
    }
}

fn field_change(field: &str, before: Value, after: Value) -> ActivityChange {
    ActivityChange {
        kind: "ProjectSecretAPIKey".to_owned(),
        action: "changed".to_owned(),
        field: Some(field.to_owned()),
        before: Some(before),
        after: Some(after),
    }
}

/// The `scopes` `ListField(child=CharField(), allow_empty=False)` plus `validate_scopes`.
fn scopes_field(
    data: &Map<String, Value>,
    required: bool,
) -> Result<Option<Vec<String>>, ApiResponse> {
    let items = match data.get("scopes") {
        None if required => {
            return Err(http::validation_error(
                "required",
                "This field is required.",
                Some("scopes"),
            ));
        }
        None => return Ok(None),
        Some(Value::Null) => {
            return Err(http::validation_error(
                "null",
                "This field may not be null.",
                Some("scopes"),
            ));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(http::validation_error(
                "not_a_list",
                &format!(
                    "Expected a list of items but got type \"{}\".",
                    http::python_type_name(other)
                ),
                Some("scopes"),
            ));
        }
    };
    if items.is_empty() {
        return Err(http::validation_error(
            "empty",
            "This list may not be empty.",
            Some("scopes"),
        ));
    }
    let mut scopes_out = Vec::with_capacity(items.len());
    for item in items {
        let scope = match item {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) => number.to_string(),
            _ => {
                return Err(http::validation_error(
                    "invalid",
                    "Not a valid string.",
                    Some("scopes"),
                ));
            }
        };
        scopes_out.push(scope);
    }
    if let Some(message) = scopes_out
        .iter()
        .find_map(|scope| scopes::project_secret_key_scope_error(scope))
    {
        return Err(http::validation_error("invalid", &message, Some("scopes")));
    }
    Ok(Some(scopes_out))
}
