//! The demo world the `fakehog` binary seeds: one organisation and project, an admin with a
//! spread of personal keys (full, read-only, legacy, project-scoped), a member, a project
//! secret API key and a team secret token.

use serde::Serialize;

use super::model::{
    MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, SeededKey, SeededProject, SeededUser,
    UserSpec,
};
use super::server::FakeHog;

/// What [`FakeHog::seed_demo`] created. It holds raw demo secrets, so it has no `Debug`:
/// print it (as JSON) only from demos.
#[derive(Clone, Serialize)]
pub struct Demo {
    /// The organisation's UUID.
    pub organization_id: String,
    /// The project, with its `phc_` token.
    pub project: SeededProject,
    /// An organisation admin who owns the personal keys below.
    pub admin: SeededUser,
    /// A plain member (cannot manage project secret API keys).
    pub member: SeededUser,
    /// The admin's key with scopes `["*"]`.
    pub full_access_key: SeededKey,
    /// The admin's key with `user:read`, `project:read` and `activity_log:read`.
    pub read_only_key: SeededKey,
    /// The admin's legacy unscoped key (shown as `["*"]`).
    pub legacy_key: SeededKey,
    /// The admin's key with `project:write`, restricted to the demo project.
    pub project_scoped_key: SeededKey,
    /// The member's key with `*`.
    pub member_key: SeededKey,
    /// A project secret API key with `feature_flag:read`.
    pub project_secret_key: SeededKey,
    /// The project's team secret token (the "feature flags secure API key").
    pub team_secret_token: String,
}

pub(crate) fn seed(hog: &FakeHog) -> Demo {
    let organization_id = hog.add_organization("Demo Organization");
    let project = hog.add_project(&organization_id, "Demo Project");
    let admin = hog.add_user(
        UserSpec::new("admin@example.com")
            .name("Ada", "Admin")
            .member_of(&organization_id, MembershipLevel::Admin),
    );
    let member = hog.add_user(
        UserSpec::new("member@example.com")
            .name("Max", "Member")
            .member_of(&organization_id, MembershipLevel::Member),
    );
    let full_access_key =
        hog.add_personal_key(admin.id, PersonalKeySpec::new("deploy").scopes(["*"]));
    let read_only_key = hog.add_personal_key(
        admin.id,
        PersonalKeySpec::new("audit (read-only)").scopes([
            "user:read",
            "project:read",
            "activity_log:read",
        ]),
    );
    let legacy_key = hog.add_personal_key(admin.id, PersonalKeySpec::new("legacy"));
    let project_scoped_key = hog.add_personal_key(
        admin.id,
        PersonalKeySpec::new("rotation bot")
            .scopes(["project:write", "activity_log:read"])
            .scoped_teams([project.id]),
    );
    let member_key = hog.add_personal_key(member.id, PersonalKeySpec::new("member").scopes(["*"]));
    let project_secret_key = hog.add_project_secret_key(
        project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]).created_by(admin.id),
    );
    let team_secret_token = hog.rotate_team_secret_token(project.id);
    Demo {
        organization_id,
        project,
        admin,
        member,
        full_access_key,
        read_only_key,
        legacy_key,
        project_scoped_key,
        member_key,
        project_secret_key,
        team_secret_token,
    }
}
