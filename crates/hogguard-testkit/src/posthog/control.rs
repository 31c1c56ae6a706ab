//! The control surface under `/_fakehog/`, for driving the stand-in from outside Rust (the
//! `fakehog` binary, shell demos). Each endpoint calls what the matching [`FakeHog`] method
//! calls. Bodies are JSON; errors are `400 {"error": "…"}`.
//!
//! [`FakeHog`]: super::FakeHog

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::faults::FaultSpec;
use super::http::{ApiRequest, ApiResponse};
use super::model::{OAuthTokenSpec, PersonalKeySpec, ProjectSecretKeySpec, UserSpec};
use super::repr;
use super::time::Timestamp;
use super::world::{Actor, World};

/// Every control endpoint, for the index and the binary's banner.
pub(crate) const ENDPOINTS: &[(&str, &str)] = &[
    ("GET /_fakehog/", "this list"),
    ("POST /_fakehog/organizations", "{name} -> {id}"),
    (
        "POST /_fakehog/projects",
        "{organization_id, name} -> {id, organization_id, name, api_token}",
    ),
    (
        "POST /_fakehog/projects/{id}/rotate_secret_token",
        "-> {secret_api_token} (old one stays valid as backup)",
    ),
    (
        "POST /_fakehog/users",
        "{email, first_name?, last_name?, memberships: [{organization_id, level: member|admin|owner}], is_active?, current_project_id?} -> {id, uuid, email}",
    ),
    (
        "POST /_fakehog/personal_api_keys",
        "{user_id, label, scopes?, scoped_teams?, scoped_organizations?, created_at?, last_used_at?, last_rolled_at?, unprefixed?} -> {id, value}",
    ),
    (
        "GET /_fakehog/personal_api_keys/{id}",
        "the key's metadata as PostHog serializes it",
    ),
    (
        "POST /_fakehog/project_secret_api_keys",
        "{project_id, label, scopes, created_by?, created_at?} -> {id, value}",
    ),
    (
        "POST /_fakehog/oauth_tokens",
        "{user_id, kind: access|refresh, scopes?, expires_at?} -> {value}",
    ),
    (
        "POST /_fakehog/dashboard/personal_api_keys",
        "{user_id, label, scopes, ...} as the person in the web app -> PostHog's 201 body, or its 400",
    ),
    (
        "POST /_fakehog/dashboard/personal_api_keys/{id}/roll",
        "-> PostHog's roll body with the new value",
    ),
    (
        "DELETE /_fakehog/dashboard/personal_api_keys/{id}",
        "-> 204",
    ),
    (
        "POST /_fakehog/faults",
        "{kind: status|throttled|delay|drop, status?, body?, wait_seconds?, delay_ms?, times?, path_prefix?}",
    ),
    ("DELETE /_fakehog/faults", "clear pending faults"),
    ("GET /_fakehog/events", "captured events"),
    ("GET /_fakehog/activity_log", "every activity-log row"),
    (
        "GET /_fakehog/requests",
        "{counts: {path: n}, requests: [...]}",
    ),
    ("DELETE /_fakehog/requests", "reset the request log"),
    ("GET /_fakehog/clock", "{now}"),
    ("PUT /_fakehog/clock", "{now: RFC 3339}"),
    ("POST /_fakehog/clock/advance", "{seconds}"),
    (
        "POST /_fakehog/live",
        "{secret} -> {live}: does it authenticate here?",
    ),
];

fn error(message: impl Into<String>) -> ApiResponse {
    ApiResponse::json(400, &json!({ "error": message.into() }))
}

fn parse<T: DeserializeOwned>(request: &ApiRequest) -> Result<T, ApiResponse> {
    serde_json::from_slice(&request.body).map_err(|e| error(format!("bad request body: {e}")))
}

#[derive(Deserialize)]
struct OrganizationBody {
    name: String,
}

#[derive(Deserialize)]
struct ProjectBody {
    organization_id: String,
    name: String,
}

#[derive(Deserialize)]
struct ForUser<T> {
    user_id: u64,
    #[serde(flatten)]
    spec: T,
}

#[derive(Deserialize)]
struct ForProject<T> {
    project_id: u64,
    #[serde(flatten)]
    spec: T,
}

#[derive(Deserialize)]
struct ClockBody {
    now: Timestamp,
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: u64,
}

#[derive(Deserialize)]
struct SecretBody {
    secret: String,
}

/// Answers a `/_fakehog/` request.
pub(crate) fn handle(world: &mut World, request: &ApiRequest) -> ApiResponse {
    let segments = request.segments();
    let method = &request.method;
    let reply = match (method, &segments[1..]) {
        (&Method::GET, []) => Ok(ApiResponse::json(
            200,
            &ENDPOINTS
                .iter()
                .map(|(endpoint, what)| json!({ "endpoint": endpoint, "what": what }))
                .collect::<Vec<_>>(),
        )),
        (&Method::POST, ["organizations"]) => parse::<OrganizationBody>(request).map(|body| {
            ApiResponse::json(201, &json!({ "id": world.add_organization(&body.name) }))
        }),
        (&Method::POST, ["projects"]) => parse::<ProjectBody>(request).and_then(|body| {
            world
                .add_project(&body.organization_id, &body.name)
                .map(|project| ApiResponse::json(201, &project))
                .map_err(error)
        }),
        (&Method::POST, ["projects", id, "rotate_secret_token"]) => id
            .parse()
            .map_err(|_| error("project ids are numbers"))
            .and_then(|id| world.rotate_team_secret_token(id).map_err(error))
            .map(|token| ApiResponse::json(200, &json!({ "secret_api_token": token }))),
        (&Method::POST, ["users"]) => parse::<UserSpec>(request).and_then(|spec| {
            world
                .add_user(spec)
                .map(|user| ApiResponse::json(201, &user))
                .map_err(error)
        }),
        (&Method::POST, ["personal_api_keys"]) => parse::<ForUser<PersonalKeySpec>>(request)
            .and_then(|body| {
                world
                    .add_personal_key(body.user_id, body.spec)
                    .map(|key| ApiResponse::json(201, &key))
                    .map_err(error)
            }),
        (&Method::GET, ["personal_api_keys", id]) => world
            .personal_keys
            .iter()
            .find(|key| key.id == *id)
            .map(|key| ApiResponse::json(200, &repr::personal_key(key, None)))
            .ok_or_else(|| ApiResponse::json(404, &json!({ "error": "no such key" }))),
        (&Method::POST, ["project_secret_api_keys"]) => {
            parse::<ForProject<ProjectSecretKeySpec>>(request).and_then(|body| {
                world
                    .add_project_secret_key(body.project_id, body.spec)
                    .map(|key| ApiResponse::json(201, &key))
                    .map_err(error)
            })
        }
        (&Method::POST, ["oauth_tokens"]) => {
            parse::<ForUser<OAuthTokenSpec>>(request).and_then(|body| {
                world
                    .add_oauth_token(body.user_id, body.spec)
                    .map(|value| ApiResponse::json(201, &json!({ "value": value })))
                    .map_err(error)
            })
        }
        (&Method::POST, ["dashboard", "personal_api_keys"]) => {
            parse::<ForUser<PersonalKeySpec>>(request).map(|body| {
                match world.dashboard_create_personal_key(body.user_id, body.spec) {
                    Ok(created) => {
                        let key = world
                            .personal_keys
                            .iter()
                            .find(|key| key.id == created.id)
                            .expect("the key was just created");
                        ApiResponse::json(201, &repr::personal_key(key, Some(&created.value)))
                    }
                    Err(rejection) => ApiResponse {
                        status: rejection.status,
                        content_type: Some("application/json"),
                        body: rejection.body.into_bytes(),
                    },
                }
            })
        }
        (&Method::POST, ["dashboard", "personal_api_keys", id, "roll"]) => {
            let owner = world
                .personal_keys
                .iter()
                .find(|key| key.id == *id)
                .map(|key| key.user_id);
            match owner.and_then(|owner| world.roll_personal_key(id, &Actor::dashboard(owner))) {
                Some(value) => {
                    let key = world
                        .personal_keys
                        .iter()
                        .find(|key| key.id == *id)
                        .expect("the key was just rolled");
                    Ok(ApiResponse::json(
                        200,
                        &repr::personal_key(key, Some(&value)),
                    ))
                }
                None => Err(ApiResponse::json(404, &json!({ "error": "no such key" }))),
            }
        }
        (&Method::DELETE, ["dashboard", "personal_api_keys", id]) => {
            if world.dashboard_delete_personal_key(id) {
                Ok(ApiResponse::empty(204))
            } else {
                Err(ApiResponse::json(404, &json!({ "error": "no such key" })))
            }
        }
        (&Method::POST, ["faults"]) => parse::<FaultSpec>(request).and_then(|spec| {
            let fault = spec.into_fault().map_err(error)?;
            world.faults.push(fault);
            Ok(ApiResponse::empty(204))
        }),
        (&Method::DELETE, ["faults"]) => {
            world.faults.clear();
            Ok(ApiResponse::empty(204))
        }
        (&Method::GET, ["events"]) => Ok(ApiResponse::json(200, &world.events)),
        (&Method::GET, ["activity_log"]) => Ok(ApiResponse::json(200, &world.activity)),
        (&Method::GET, ["requests"]) => {
            let mut counts = BTreeMap::new();
            for record in &world.requests {
                *counts.entry(record.path.as_str()).or_insert(0_usize) += 1;
            }
            Ok(ApiResponse::json(
                200,
                &json!({ "counts": counts, "requests": world.requests }),
            ))
        }
        (&Method::DELETE, ["requests"]) => {
            world.requests.clear();
            Ok(ApiResponse::empty(204))
        }
        (&Method::GET, ["clock"]) => Ok(ApiResponse::json(200, &json!({ "now": world.now }))),
        (&Method::PUT, ["clock"]) => parse::<ClockBody>(request).map(|body| {
            world.now = body.now;
            ApiResponse::json(200, &json!({ "now": world.now }))
        }),
        (&Method::POST, ["clock", "advance"]) => parse::<AdvanceBody>(request).map(|body| {
            world.now = world.now.plus(Duration::from_secs(body.seconds));
            ApiResponse::json(200, &json!({ "now": world.now }))
        }),
        (&Method::POST, ["live"]) => parse::<SecretBody>(request)
            .map(|body| ApiResponse::json(200, &json!({ "live": world.is_live(&body.secret) }))),
        _ => Err(ApiResponse::json(
            404,
            &json!({ "error": "no such control endpoint; GET /_fakehog/ lists them" }),
        )),
    };
    reply.unwrap_or_else(|response| response)
}
