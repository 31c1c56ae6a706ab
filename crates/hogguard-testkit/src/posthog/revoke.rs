//! `POST /api/revoke_leaked_key`: PostHog's public, unauthenticated leaked-key report. A
//! matching personal or project secret API key is rolled (the new value is not returned), an
//! OAuth token revoked; team secret tokens and unknown strings are `found: false`.

use std::net::IpAddr;

use hyper::Method;
use serde::Serialize;

use super::http::{self, ApiRequest, ApiResponse, Reply, char_field, json_object_body};
use super::model::OAuthTokenKind;
use super::tokens::{self, hash_key_value};
use super::world::{Actor, World};

#[derive(Serialize)]
struct RevokeResult {
    found: bool,
    #[serde(rename = "type")]
    kind: Option<&'static str>,
}

impl World {
    pub(crate) fn revoke_leaked_key(&mut self, request: &ApiRequest) -> Reply {
        // DRF checks throttles before dispatching on the method.
        self.check_revoke_throttle(request.peer)?;
        if request.method != Method::POST {
            return Err(http::method_not_allowed(&request.method));
        }
        // The view's only parser is `JSONParser`.
        let data = json_object_body(request)?;
        let token = char_field(&data, "token", 200, true)?.unwrap_or_default();
        let kind = self.revoke(&token);
        Ok(ApiResponse::json(
            200,
            &RevokeResult {
                found: kind.is_some(),
                kind,
            },
        ))
    }

    /// `revoke_leaked_secret` with type detection by prefix (and the legacy 43-character
    /// shape); returns the canonical type of what was found and revoked.
    fn revoke(&mut self, token: &str) -> Option<&'static str> {
        let actor = Actor::system();
        if token.starts_with("phx_") || tokens::is_legacy_personal_key_shape(token) {
            let hashed = hash_key_value(token);
            let key_id = self
                .personal_keys
                .iter()
                .find(|key| key.secure_value == hashed)?
                .id
                .clone();
            self.roll_personal_key(&key_id, &actor)?;
            return Some("personal_api_key");
        }
        if token.starts_with("phs_") {
            let hashed = hash_key_value(token);
            let index = self
                .project_secret_keys
                .iter()
                .position(|key| key.secure_value == hashed)?;
            self.roll_project_secret_key_value(index, &actor);
            return Some("project_secret_api_key");
        }
        let (kind, name) = if token.starts_with("pha_") {
            (OAuthTokenKind::Access, "oauth_access_token")
        } else if token.starts_with("phr_") {
            (OAuthTokenKind::Refresh, "oauth_refresh_token")
        } else {
            return None;
        };
        // Expired access tokens are revoked too: the refresh token they pair with may be live.
        let found = self.oauth_tokens.iter_mut().find(|candidate| {
            candidate.kind == kind && !candidate.revoked && candidate.value == token
        })?;
        found.revoked = true;
        Some(name)
    }

    /// `LeakedKeyReportThrottle`, per client IP, when a budget is configured: DRF's
    /// `SimpleRateThrottle` over a sliding window on the stand-in's clock.
    fn check_revoke_throttle(&mut self, peer: IpAddr) -> Result<(), ApiResponse> {
        let Some(limit) = self.revoke_throttle else {
            return Ok(());
        };
        let now = self.now;
        let history = self.revoke_history.entry(peer).or_default();
        history.retain(|at| now.since(*at).is_some_and(|age| age < limit.per) || *at > now);
        if history.len() >= limit.requests {
            // DRF: remaining time of the oldest entry, spread over the requests still allowed.
            let oldest = history.iter().min().copied().unwrap_or(now);
            let remaining = limit
                .per
                .saturating_sub(now.since(oldest).unwrap_or_default());
            let available = limit.requests + 1 - history.len();
            let wait = remaining.as_secs_f64() / available as f64;
            return Err(http::throttled(Some(wait.ceil() as u64)));
        }
        history.push(now);
        Ok(())
    }
}
