//! A few of PostHog's project resources, enough for a proxy's scope checks to be observed end
//! to end: feature flags (`FeatureFlagViewSet`, `scope_object = "feature_flag"`, with
//! `remote_config`), annotations (`scope_object = "annotation"`) and insights
//! (`scope_object = "insight"`, listed empty). Each view authenticates, checks the scope as
//! `APIScopePermission` derives it (read for `GET`, write otherwise), then membership, then
//! acts.

use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use super::auth::ViewTeam;
use super::http::{self, ApiRequest, ApiResponse, Reply, char_field, json_object_body};
use super::model::{Annotation, FeatureFlag};
use super::repr::LimitOffsetPage;
use super::time::Timestamp;
use super::world::World;

/// `filters` of a flag with one release condition and no properties.
#[derive(Serialize)]
pub(crate) struct FlagFilters {
    groups: [FlagGroup; 1],
    multivariate: Option<()>,
    payloads: EmptyObject,
}

#[derive(Serialize)]
struct FlagGroup {
    properties: [(); 0],
    rollout_percentage: u8,
}

#[derive(Serialize)]
pub(crate) struct EmptyObject {}

/// The flag as local evaluation serves it (`MinimalFeatureFlagSerializer`'s fields that SDKs
/// read).
#[derive(Serialize)]
pub(crate) struct FlagDefinition<'a> {
    id: u64,
    team_id: u64,
    name: &'a str,
    key: &'a str,
    filters: FlagFilters,
    deleted: bool,
    active: bool,
    ensure_experience_continuity: bool,
}

pub(crate) fn flag_definition(flag: &FeatureFlag) -> FlagDefinition<'_> {
    FlagDefinition {
        id: flag.id,
        team_id: flag.project_id,
        name: &flag.name,
        key: &flag.key,
        filters: filters(flag),
        deleted: flag.deleted,
        active: flag.active,
        ensure_experience_continuity: false,
    }
}

fn filters(flag: &FeatureFlag) -> FlagFilters {
    FlagFilters {
        groups: [FlagGroup {
            properties: [],
            rollout_percentage: flag.rollout_percentage,
        }],
        multivariate: None,
        payloads: EmptyObject {},
    }
}

/// The flag as the API serves it (a subset of `FeatureFlagSerializer`, in its order).
#[derive(Serialize)]
struct FlagRepr<'a> {
    id: u64,
    name: &'a str,
    key: &'a str,
    filters: FlagFilters,
    deleted: bool,
    active: bool,
    created_at: Timestamp,
    ensure_experience_continuity: bool,
}

fn flag_repr(flag: &FeatureFlag) -> FlagRepr<'_> {
    FlagRepr {
        id: flag.id,
        name: &flag.name,
        key: &flag.key,
        filters: filters(flag),
        deleted: flag.deleted,
        active: flag.active,
        created_at: flag.created_at,
        ensure_experience_continuity: false,
    }
}

#[derive(Serialize)]
struct AnnotationRepr<'a> {
    id: u64,
    content: &'a str,
    date_marker: Option<&'a str>,
    created_at: Timestamp,
    scope: &'static str,
}

fn annotation_repr(annotation: &Annotation) -> AnnotationRepr<'_> {
    AnnotationRepr {
        id: annotation.id,
        content: &annotation.content,
        date_marker: annotation.date_marker.as_deref(),
        created_at: annotation.created_at,
        scope: "project",
    }
}

fn page<T: Serialize>(results: Vec<T>) -> ApiResponse {
    ApiResponse::json(
        200,
        &LimitOffsetPage {
            count: results.len(),
            next: None,
            previous: None,
            results,
        },
    )
}

impl World {
    /// Authenticates a call to a project-nested viewset and checks its scope and the caller's
    /// membership; returns the project id.
    fn project_view(
        &mut self,
        request: &ApiRequest,
        raw_project_id: &str,
        scope_object: &str,
        required: Option<&str>,
    ) -> Result<u64, ApiResponse> {
        let principal = self.authenticate(request, true)?;
        let project = self.resolve_project(raw_project_id);
        self.check_scopes(
            &principal,
            required,
            scope_object,
            &ViewTeam::Team(project.clone()),
        )?;
        let project = project?;
        self.check_project_member(&principal, &project)?;
        Ok(project.id)
    }

    /// `/api/projects/{id}/feature_flags/…`: list, create, retrieve, partial update, destroy
    /// (a soft delete, as PostHog's `deleted` flag), and `remote_config`.
    pub(crate) fn feature_flags_view(
        &mut self,
        request: &ApiRequest,
        raw_project_id: &str,
        rest: &[&str],
    ) -> Reply {
        if let [flag, "remote_config"] = rest {
            return self.remote_config(request, raw_project_id, flag);
        }
        let read = matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let required = match (rest, &request.method) {
            ([] | [_], _) if read => Some("feature_flag:read"),
            ([], &Method::POST | &Method::PATCH)
            | ([_], &Method::PUT | &Method::PATCH | &Method::DELETE) => Some("feature_flag:write"),
            ([] | [_], _) => None,
            _ => return Err(http::not_found("Not found.")),
        };
        let project_id = self.project_view(request, raw_project_id, "feature_flag", required)?;
        match (rest, &request.method) {
            ([], &Method::GET) => Ok(page(
                self.feature_flags
                    .iter()
                    .filter(|flag| flag.project_id == project_id && !flag.deleted)
                    .map(flag_repr)
                    .collect(),
            )),
            ([], &Method::POST) => {
                let data = json_object_body(request)?;
                let key = char_field(&data, "key", 400, true)?.unwrap_or_default();
                if self
                    .feature_flags
                    .iter()
                    .any(|flag| flag.project_id == project_id && !flag.deleted && flag.key == key)
                {
                    return Err(http::validation_error(
                        "unique",
                        "There is already a feature flag with this key.",
                        Some("key"),
                    ));
                }
                let name = char_field(&data, "name", 400, false)?.unwrap_or_default();
                let active = data.get("active").and_then(Value::as_bool).unwrap_or(true);
                let flag = FeatureFlag {
                    id: self.next_id(),
                    project_id,
                    key,
                    name,
                    active,
                    rollout_percentage: 100,
                    deleted: false,
                    created_at: self.now,
                };
                let response = ApiResponse::json(201, &flag_repr(&flag));
                self.feature_flags.push(flag);
                Ok(response)
            }
            ([flag], method) => {
                let index = self.flag_index(project_id, flag)?;
                match *method {
                    Method::GET => Ok(ApiResponse::json(
                        200,
                        &flag_repr(&self.feature_flags[index]),
                    )),
                    Method::PATCH => {
                        let data = json_object_body(request)?;
                        let flag = &mut self.feature_flags[index];
                        if let Some(active) = data.get("active").and_then(Value::as_bool) {
                            flag.active = active;
                        }
                        if let Some(name) = char_field(&data, "name", 400, false)? {
                            flag.name = name;
                        }
                        Ok(ApiResponse::json(200, &flag_repr(flag)))
                    }
                    Method::DELETE => {
                        self.feature_flags[index].deleted = true;
                        Ok(ApiResponse::empty(204))
                    }
                    _ => Err(http::method_not_allowed(method)),
                }
            }
            (_, method) => Err(http::method_not_allowed(method)),
        }
    }

    /// A flag of the project by id, or by key as `remote_config` also accepts.
    fn flag_index(&self, project_id: u64, id_or_key: &str) -> Result<usize, ApiResponse> {
        self.feature_flags
            .iter()
            .position(|flag| {
                flag.project_id == project_id
                    && !flag.deleted
                    && (flag.id.to_string() == id_or_key || flag.key == id_or_key)
            })
            .ok_or_else(|| http::not_found("Not found."))
    }

    /// `GET …/feature_flags/{id|key}/remote_config/`: one of the two places a project secret
    /// key (`psak_allowed_actions = ["remote_config"]`) or team secret token authenticates; a
    /// personal key needs `feature_flag:read`. The stand-in's flags carry no payload: `null`.
    fn remote_config(&mut self, request: &ApiRequest, raw_project_id: &str, flag: &str) -> Reply {
        let caller = self.authenticate_for_flags(request)?;
        let project_id = self.flags_project(
            caller,
            Some("feature_flag:read"),
            |project_id| raw_project_id.parse::<u64>().ok() == Some(project_id),
            |world, _| Ok(world.resolve_project(raw_project_id)),
        )?;
        if request.method != Method::GET {
            return Err(http::method_not_allowed(&request.method));
        }
        self.flag_index(project_id, flag)?;
        Ok(ApiResponse::json(200, &Value::Null))
    }

    /// `/api/projects/{id}/annotations/`: list and create.
    pub(crate) fn annotations_view(
        &mut self,
        request: &ApiRequest,
        raw_project_id: &str,
        rest: &[&str],
    ) -> Reply {
        if !rest.is_empty() {
            return Err(http::not_found("Not found."));
        }
        let required = match request.method {
            Method::GET | Method::HEAD | Method::OPTIONS => Some("annotation:read"),
            Method::POST | Method::PATCH => Some("annotation:write"),
            _ => None,
        };
        let project_id = self.project_view(request, raw_project_id, "annotation", required)?;
        match request.method {
            Method::GET => {
                let results: Vec<AnnotationRepr<'_>> = self
                    .annotations
                    .iter()
                    .filter(|annotation| annotation.project_id == project_id)
                    .map(annotation_repr)
                    .collect();
                Ok(page(results))
            }
            Method::POST => {
                let data = json_object_body(request)?;
                let content = char_field(&data, "content", 8192, true)?.unwrap_or_default();
                let date_marker = data
                    .get("date_marker")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let annotation = Annotation {
                    id: self.next_id(),
                    project_id,
                    content,
                    date_marker,
                    created_at: self.now,
                };
                let response = ApiResponse::json(201, &annotation_repr(&annotation));
                self.annotations.push(annotation);
                Ok(response)
            }
            ref method => Err(http::method_not_allowed(method)),
        }
    }

    /// `GET /api/projects/{id}/insights/`: the stand-in has no insights, so an empty page.
    pub(crate) fn insights_view(&mut self, request: &ApiRequest, raw_project_id: &str) -> Reply {
        let required = if matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            "insight:read"
        } else {
            "insight:write"
        };
        self.project_view(request, raw_project_id, "insight", Some(required))?;
        if request.method != Method::GET {
            return Err(http::method_not_allowed(&request.method));
        }
        Ok(page(Vec::<Value>::new()))
    }
}
