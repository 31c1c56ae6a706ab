//! Authentication and permission checks, following `posthog/auth.py` and
//! `posthog/permissions.py` (`APIScopePermission`, `AccessControlPermission`,
//! `TeamMemberAccessPermission`).

use std::time::Duration;

use super::http::{self, ApiRequest, ApiResponse};
use super::model::{MembershipLevel, OAuthTokenKind};
use super::scopes;
use super::time::Timestamp;
use super::tokens::hash_key_value;
use super::world::{Project, World};

/// How a user-backed request authenticated.
#[derive(Clone, Debug)]
pub(crate) enum Via {
    /// A personal API key, by id.
    PersonalKey(String),
    /// An OAuth access token.
    OAuth,
}

/// The user a request acts for, with the credential's scopes and restrictions.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub(crate) user_id: u64,
    pub(crate) via: Via,
    pub(crate) scopes: Vec<String>,
    pub(crate) scoped_teams: Option<Vec<u64>>,
    pub(crate) scoped_organizations: Option<Vec<String>>,
}

/// A project a team-based view resolved, by value so handlers can mutate the world after.
#[derive(Clone, Debug)]
pub(crate) struct ProjectRef {
    pub(crate) id: u64,
    pub(crate) organization_id: String,
}

impl ProjectRef {
    pub(crate) fn of(project: &Project) -> ProjectRef {
        ProjectRef {
            id: project.id,
            organization_id: project.organization_id.clone(),
        }
    }
}

/// What `view.team` gives for the scope check: nothing for views outside a project, else the
/// project or the 404 looking it up raised.
pub(crate) enum ViewTeam {
    NotTeamView,
    Team(Result<ProjectRef, ApiResponse>),
}

/// Who called a local-evaluation endpoint.
pub(crate) enum FlagsCaller {
    User(Principal),
    TeamSecretToken { project_id: u64 },
    ProjectSecretKey { project_id: u64 },
}

/// PostHog updates `last_used_at` at most once per hour.
const LAST_USED_GRANULARITY: Duration = Duration::from_secs(3600);

fn needs_last_used_update(last_used_at: Option<Timestamp>, now: Timestamp) -> bool {
    last_used_at.is_none_or(|last| {
        now.since(last)
            .is_some_and(|gap| gap > LAST_USED_GRANULARITY)
    })
}

/// The token of `Authorization: Bearer <token>` (`^Bearer\s+(\S.+)$`, stripped).
pub(crate) fn bearer_token(request: &ApiRequest) -> Option<&str> {
    let rest = request.header("authorization")?.strip_prefix("Bearer")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let token = rest.trim_start();
    (token.chars().count() >= 2).then(|| token.trim())
}

impl World {
    /// `PersonalAPIKeyAuthentication.find_key_with_source`: the Bearer header (unless it holds
    /// an OAuth token), then the body field `personal_api_key`, then the query string.
    fn personal_key_candidate(request: &ApiRequest) -> Option<(String, &'static str)> {
        if let Some(token) = bearer_token(request) {
            if token.starts_with("pha_") {
                return None;
            }
            return Some((token.to_owned(), "Authorization header"));
        }
        let body: Option<serde_json::Value> = serde_json::from_slice(&request.body).ok();
        if let Some(value) = body.as_ref().and_then(|body| body.get("personal_api_key")) {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            return Some((value, "body"));
        }
        request
            .query_param("personal_api_key")
            .map(|value| (value.to_owned(), "query string"))
    }

    /// Authenticates a personal API key, updating `last_used_at` at most hourly.
    fn authenticate_personal_key(
        &mut self,
        request: &ApiRequest,
    ) -> Result<Option<Principal>, ApiResponse> {
        let Some((value, source)) = Self::personal_key_candidate(request) else {
            return Ok(None);
        };
        let hashed = hash_key_value(&value);
        let index = self.personal_keys.iter().position(|key| {
            key.secure_value == hashed && self.user(key.user_id).is_some_and(|user| user.is_active)
        });
        let Some(index) = index else {
            return Err(http::authentication_failed(&format!(
                "Personal API key found in request {source} is invalid."
            )));
        };
        let now = self.now;
        let key = &mut self.personal_keys[index];
        if needs_last_used_update(key.last_used_at, now) {
            key.last_used_at = Some(now);
        }
        Ok(Some(Principal {
            user_id: key.user_id,
            via: Via::PersonalKey(key.id.clone()),
            scopes: key.scopes.clone(),
            scoped_teams: key.scoped_teams.clone(),
            scoped_organizations: key.scoped_organizations.clone(),
        }))
    }

    /// `OAuthAccessTokenAuthentication`: Bearer `pha_` tokens only.
    fn authenticate_oauth(&self, request: &ApiRequest) -> Result<Option<Principal>, ApiResponse> {
        let Some(token) = bearer_token(request).filter(|token| token.starts_with("pha_")) else {
            return Ok(None);
        };
        let found = self.oauth_tokens.iter().find(|candidate| {
            candidate.kind == OAuthTokenKind::Access
                && !candidate.revoked
                && candidate.value == token
        });
        let Some(found) = found else {
            return Err(http::authentication_failed("Invalid access token."));
        };
        if found.expires_at <= self.now {
            return Err(http::authentication_failed("Access token has expired."));
        }
        if !self.user(found.user_id).is_some_and(|user| user.is_active) {
            return Err(http::authentication_failed(
                "User associated with access token is disabled.",
            ));
        }
        Ok(Some(Principal {
            user_id: found.user_id,
            via: Via::OAuth,
            scopes: found.scopes.clone(),
            scoped_teams: None,
            scoped_organizations: None,
        }))
    }

    /// Runs the authenticators of a view (OAuth first when the view accepts it, then personal
    /// API keys); 401 `not_authenticated` when none recognised a credential.
    pub(crate) fn authenticate(
        &mut self,
        request: &ApiRequest,
        accept_oauth: bool,
    ) -> Result<Principal, ApiResponse> {
        if accept_oauth && let Some(principal) = self.authenticate_oauth(request)? {
            return Ok(principal);
        }
        self.authenticate_personal_key(request)?
            .ok_or_else(http::not_authenticated)
    }

    /// The authenticators of the local-evaluation endpoints: a `phs_` Bearer token is a team
    /// secret token or a project secret API key; anything else goes to OAuth and PAK auth.
    pub(crate) fn authenticate_for_flags(
        &mut self,
        request: &ApiRequest,
    ) -> Result<FlagsCaller, ApiResponse> {
        let secret = bearer_token(request).filter(|token| {
            token.strip_prefix("phs_").is_some_and(|body| {
                !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        });
        let Some(secret) = secret else {
            return self.authenticate(request, true).map(FlagsCaller::User);
        };
        if let Some(project) = self.projects.iter().find(|project| {
            project.secret_api_token.as_deref() == Some(secret)
                || project.secret_api_token_backup.as_deref() == Some(secret)
        }) {
            return Ok(FlagsCaller::TeamSecretToken {
                project_id: project.id,
            });
        }
        let hashed = hash_key_value(secret);
        let now = self.now;
        match self
            .project_secret_keys
            .iter_mut()
            .find(|key| key.secure_value == hashed)
        {
            Some(key) => {
                if needs_last_used_update(key.last_used_at, now) {
                    key.last_used_at = Some(now);
                }
                Ok(FlagsCaller::ProjectSecretKey {
                    project_id: key.project_id,
                })
            }
            None => Err(http::authentication_failed("Secret API token is invalid.")),
        }
    }

    /// `view.team` for `/api/projects/{id}/…` and `/api/environments/{id}/…`.
    pub(crate) fn resolve_project(&self, raw_id: &str) -> Result<ProjectRef, ApiResponse> {
        raw_id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.project(id))
            .map(ProjectRef::of)
            .ok_or_else(|| http::not_found("Project not found."))
    }

    /// `APIScopePermission.has_permission`, `required` being the scope the action needs
    /// (`None` when the action has no scope mapping).
    pub(crate) fn check_scopes(
        &self,
        principal: &Principal,
        required: Option<&str>,
        scope_object: &str,
        team: &ViewTeam,
    ) -> Result<(), ApiResponse> {
        match principal.via {
            // Legacy personal API keys have no scopes and may do anything.
            Via::PersonalKey(_) if principal.scopes.is_empty() => return Ok(()),
            Via::OAuth if principal.scopes.is_empty() => {
                return Err(http::permission_denied(
                    "OAuth token has no scopes and cannot access this resource",
                ));
            }
            _ => {}
        }
        let Some(required) = required else {
            return Err(http::personal_api_key_unsupported());
        };
        // The /api/users/@me/ endpoint is exempt from team and organisation scoping.
        if scope_object != "user" {
            if let Some(teams) = principal.scoped_teams.as_ref().filter(|t| !t.is_empty()) {
                match team {
                    ViewTeam::NotTeamView => {
                        return Err(http::permission_denied(
                            "API keys with scoped projects are only supported on project-based endpoints.",
                        ));
                    }
                    ViewTeam::Team(Err(not_found)) => return Err(not_found.clone()),
                    ViewTeam::Team(Ok(project)) if !teams.contains(&project.id) => {
                        return Err(http::permission_denied(&format!(
                            "API key does not have access to the requested project: ID {}.",
                            project.id
                        )));
                    }
                    ViewTeam::Team(Ok(_)) => {}
                }
            }
            if let Some(organizations) = principal
                .scoped_organizations
                .as_ref()
                .filter(|o| !o.is_empty())
            {
                match team {
                    ViewTeam::Team(Err(not_found)) => return Err(not_found.clone()),
                    ViewTeam::Team(Ok(project))
                        if !organizations.contains(&project.organization_id) =>
                    {
                        return Err(http::permission_denied(&format!(
                            "API key does not have access to the requested organization: ID {}.",
                            project.organization_id
                        )));
                    }
                    _ => {}
                }
            }
        }
        if scopes::grants(&principal.scopes, required) {
            Ok(())
        } else {
            Err(http::permission_denied(&format!(
                "API key missing required scope '{required}'"
            )))
        }
    }

    /// `AccessControlPermission` / `TeamMemberAccessPermission`: the caller's level in the
    /// project, or 403 when they are not a member.
    pub(crate) fn check_project_member(
        &self,
        principal: &Principal,
        project: &ProjectRef,
    ) -> Result<MembershipLevel, ApiResponse> {
        self.user(principal.user_id)
            .and_then(|user| user.level_in(&project.organization_id))
            .ok_or_else(|| http::permission_denied("You don't have access to the project."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_used_moves_at_most_hourly() {
        let start = Timestamp::from_unix_seconds(1_000_000);
        assert!(needs_last_used_update(None, start));
        assert!(!needs_last_used_update(
            Some(start),
            start.plus(Duration::from_secs(3600))
        ));
        assert!(needs_last_used_update(
            Some(start),
            start.plus(Duration::from_secs(3601))
        ));
    }
}
