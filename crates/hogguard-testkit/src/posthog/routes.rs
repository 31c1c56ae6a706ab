//! Which handler answers which path: PostHog's router accepts every private-API route with or
//! without a trailing slash, and capture accepts its routes both ways too.

use super::capture::{BATCH_BODY_LIMIT, EVENT_BODY_LIMIT};
use super::http::{self, ApiRequest, ApiResponse};
use super::world::World;

impl World {
    /// Answers a request to the PostHog surface (not `/_fakehog/`).
    pub(crate) fn handle(&mut self, request: &ApiRequest) -> ApiResponse {
        let segments = request.segments();
        let reply = match segments.as_slice() {
            ["api", "personal_api_keys", rest @ ..] => self.personal_api_keys(request, rest),
            ["api", "users", "@me"] => self.users_me(request),
            [
                "api",
                "projects" | "environments",
                project,
                "project_secret_api_keys",
                rest @ ..,
            ] => self.project_secret_api_keys(request, project, rest),
            ["api", "projects" | "environments", project, "activity_log"] => {
                self.activity_log(request, project)
            }
            ["api", "feature_flag", "local_evaluation"] => self.local_evaluation(request, None),
            [
                "api",
                "projects" | "environments",
                project,
                "feature_flags",
                "local_evaluation",
            ] => self.local_evaluation(request, Some(project)),
            [
                "api",
                "projects" | "environments",
                project,
                "feature_flags",
                rest @ ..,
            ] => self.feature_flags_view(request, project, rest),
            [
                "api",
                "projects" | "environments",
                project,
                "annotations",
                rest @ ..,
            ] => self.annotations_view(request, project, rest),
            ["api", "projects" | "environments", project, "insights"] => {
                self.insights_view(request, project)
            }
            ["flags", "definitions"] => self.flag_definitions(request),
            ["api", "revoke_leaked_key"] => self.revoke_leaked_key(request),
            ["i", "v0", "e"] | ["e"] | ["capture"] | ["track"] | ["engage"] => {
                self.capture(request, EVENT_BODY_LIMIT)
            }
            ["batch"] => self.capture(request, BATCH_BODY_LIMIT),
            _ => Err(http::not_found("Not found.")),
        };
        reply.unwrap_or_else(|error| error)
    }
}
