//! The feature-flag local-evaluation endpoints, where a `phs_` secret (team secret token or
//! project secret API key) authenticates, so also the stand-in's `phs_` validity probe: the
//! Django routes and PostHog's feature-flags service's `/flags/definitions`, which SDKs poll
//! with `?token=<phc_>`. They serve the project's flags as SDKs evaluate them.

use hyper::Method;
use serde::Serialize;

use super::auth::{FlagsCaller, Principal, ProjectRef, ViewTeam};
use super::http::{self, ApiRequest, ApiResponse, Reply};
use super::resources::{EmptyObject, FlagDefinition, flag_definition};
use super::world::World;

/// The local-evaluation payload.
#[derive(Serialize)]
struct LocalEvaluation<'a> {
    flags: Vec<FlagDefinition<'a>>,
    group_type_mapping: EmptyObject,
    cohorts: EmptyObject,
}

impl World {
    /// `GET /api/feature_flag/local_evaluation` (`raw_project_id` `None`) or
    /// `GET /api/projects/{id}/feature_flags/local_evaluation`.
    pub(crate) fn local_evaluation(
        &mut self,
        request: &ApiRequest,
        raw_project_id: Option<&str>,
    ) -> Reply {
        let caller = self.authenticate_for_flags(request)?;
        let required = (request.method == Method::GET).then_some("feature_flag:read");
        // `ProjectSecretAPITokenPermission`: the secret's project must be the URL's.
        let project_id = self.flags_project(
            caller,
            required,
            |project_id| {
                raw_project_id.is_none_or(|raw| raw.parse::<u64>().ok() == Some(project_id))
            },
            |world, principal| match raw_project_id {
                Some(raw) => Ok(world.resolve_project(raw)),
                None => world
                    .project_of_legacy_flags_route(request, principal.user_id)
                    .map(Ok),
            },
        )?;
        if request.method != Method::GET {
            return Err(http::method_not_allowed(&request.method));
        }
        Ok(self.definitions(project_id))
    }

    /// `GET /flags/definitions?token=<phc_>`: PostHog's feature-flags service, which SDKs
    /// poll for local evaluation with a personal key (`feature_flag:read`) or a `phs_` secret
    /// of the token's project. A missing or unknown `token` is a 401 (the service's exact
    /// wording is unverified).
    pub(crate) fn flag_definitions(&mut self, request: &ApiRequest) -> Reply {
        let caller = self.authenticate_for_flags(request)?;
        let project = request
            .query_param("token")
            .and_then(|token| self.project_by_token(token))
            .map(ProjectRef::of)
            .ok_or_else(|| http::authentication_failed("Project API key invalid."))?;
        self.flags_project(
            caller,
            Some("feature_flag:read"),
            |project_id| project_id == project.id,
            |_, _| Ok(Ok(project.clone())),
        )?;
        if request.method != Method::GET {
            return Err(http::method_not_allowed(&request.method));
        }
        Ok(self.definitions(project.id))
    }

    fn definitions(&self, project_id: u64) -> ApiResponse {
        ApiResponse::json(
            200,
            &LocalEvaluation {
                flags: self
                    .feature_flags
                    .iter()
                    .filter(|flag| flag.project_id == project_id && !flag.deleted)
                    .map(flag_definition)
                    .collect(),
                group_type_mapping: EmptyObject {},
                cohorts: EmptyObject {},
            },
        )
    }

    /// The project a flags call reads, once its caller may: a secret (team secret token or
    /// project secret key) must belong to a project `secret_allowed` accepts; a personal key
    /// needs `required` on the `project` it names, and its user must be a member. `project`'s
    /// outer error is answered at once, its inner one after the scope check, as PostHog
    /// checks scopes before it looks a URL's project up.
    pub(crate) fn flags_project(
        &mut self,
        caller: FlagsCaller,
        required: Option<&str>,
        secret_allowed: impl FnOnce(u64) -> bool,
        project: impl FnOnce(
            &mut Self,
            &Principal,
        ) -> Result<Result<ProjectRef, ApiResponse>, ApiResponse>,
    ) -> Result<u64, ApiResponse> {
        match caller {
            FlagsCaller::TeamSecretToken { project_id }
            | FlagsCaller::ProjectSecretKey { project_id } => {
                if !secret_allowed(project_id) {
                    return Err(http::permission_denied(
                        "You do not have permission to perform this action.",
                    ));
                }
                Ok(project_id)
            }
            FlagsCaller::User(principal) => {
                let project = project(self, &principal)?;
                self.check_scopes(
                    &principal,
                    required,
                    "feature_flag",
                    &ViewTeam::Team(project.clone()),
                )?;
                let project = project?;
                self.check_project_member(&principal, &project)?;
                Ok(project.id)
            }
        }
    }

    /// The legacy route's team: the project whose `phc_` token is in `?token=` (401 when it
    /// names none), else the user's current project.
    fn project_of_legacy_flags_route(
        &self,
        request: &ApiRequest,
        user_id: u64,
    ) -> Result<ProjectRef, ApiResponse> {
        let project = match request.query_param("token") {
            Some(token) => Some(self.project_by_token(token).ok_or_else(|| {
                http::authentication_failed("Incorrect authentication credentials.")
            })?),
            None => self
                .user(user_id)
                .and_then(|user| self.current_project_of(user))
                .and_then(|id| self.project(id)),
        };
        let project = project.ok_or_else(|| {
            http::validation_error(
                "invalid",
                "This endpoint requires the current project to be set on your account.",
                None,
            )
        })?;
        Ok(ProjectRef::of(project))
    }
}
