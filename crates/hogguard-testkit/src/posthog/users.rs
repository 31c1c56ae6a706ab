//! `/api/users/@me/`: the key owner, for keys holding `user:read` (or `*`, or legacy keys).

use hyper::Method;
use serde::Serialize;

use super::auth::ViewTeam;
use super::http::{self, ApiRequest, ApiResponse, Reply};
use super::model::MembershipLevel;
use super::time::Timestamp;
use super::world::{Organization, Project, User, World};

/// A subset of `UserSerializer`: identity, current project and organisations.
#[derive(Serialize)]
struct MeRepr<'a> {
    date_joined: Timestamp,
    uuid: &'a str,
    distinct_id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    pending_email: Option<()>,
    is_email_verified: bool,
    has_password: bool,
    id: u64,
    is_staff: bool,
    is_impersonated: bool,
    team: Option<TeamBasicRepr<'a>>,
    organization: Option<OrganizationBasicRepr<'a>>,
    organizations: Vec<OrganizationBasicRepr<'a>>,
}

#[derive(Serialize)]
struct TeamBasicRepr<'a> {
    id: u64,
    organization: &'a str,
    project_id: u64,
    api_token: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct OrganizationBasicRepr<'a> {
    id: &'a str,
    name: &'a str,
    slug: String,
    membership_level: u8,
}

fn organization_basic(
    organization: &Organization,
    level: MembershipLevel,
) -> OrganizationBasicRepr<'_> {
    OrganizationBasicRepr {
        id: &organization.id,
        name: &organization.name,
        slug: organization
            .name
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-"),
        // `OrganizationMembership.Level`: MEMBER = 1, ADMIN = 8, OWNER = 15.
        membership_level: match level {
            MembershipLevel::Member => 1,
            MembershipLevel::Admin => 8,
            MembershipLevel::Owner => 15,
        },
    }
}

fn team_basic(project: &Project) -> TeamBasicRepr<'_> {
    TeamBasicRepr {
        id: project.id,
        organization: &project.organization_id,
        project_id: project.id,
        api_token: &project.api_token,
        name: &project.name,
    }
}

impl World {
    pub(crate) fn users_me(&mut self, request: &ApiRequest) -> Reply {
        let principal = self.authenticate(request, true)?;
        let required = (request.method == Method::GET).then_some("user:read");
        self.check_scopes(&principal, required, "user", &ViewTeam::NotTeamView)?;
        if request.method != Method::GET {
            return Err(http::method_not_allowed(&request.method));
        }
        let user = self
            .user(principal.user_id)
            .ok_or_else(http::not_authenticated)?;
        Ok(ApiResponse::json(200, &self.me(user)))
    }

    fn me<'a>(&'a self, user: &'a User) -> MeRepr<'a> {
        let organizations: Vec<OrganizationBasicRepr<'a>> = user
            .memberships
            .iter()
            .filter_map(|(id, level)| {
                self.organization(id)
                    .map(|organization| organization_basic(organization, *level))
            })
            .collect();
        let team = self
            .current_project_of(user)
            .and_then(|id| self.project(id))
            .map(team_basic);
        let organization = user.memberships.first().and_then(|(id, level)| {
            self.organization(id)
                .map(|organization| organization_basic(organization, *level))
        });
        MeRepr {
            date_joined: user.date_joined,
            uuid: &user.uuid,
            distinct_id: &user.distinct_id,
            first_name: &user.first_name,
            last_name: &user.last_name,
            email: &user.email,
            pending_email: None,
            is_email_verified: true,
            has_password: true,
            id: user.id,
            is_staff: false,
            is_impersonated: false,
            team,
            organization,
            organizations,
        }
    }
}
