//! Capture (`rust/capture`): the v0 event routes. Tokens are checked for shape only, so an
//! unknown `phc_` token still gets `200 {"status":"Ok"}`; errors are plain text.

use hyper::Method;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::http::{ApiRequest, ApiResponse, Reply};
use super::model::CapturedEvent;
use super::tokens;
use super::world::World;

/// `EVENT_BODY_SIZE`: the limit of `/i/v0/e`, `/e`, `/capture`, `/track` and `/engage`.
pub(crate) const EVENT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// `BATCH_BODY_SIZE`: the limit of `/batch`.
pub(crate) const BATCH_BODY_LIMIT: usize = 20 * 1024 * 1024;

/// `RawRequest`: the three body forms, tried in PostHog's order.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawRequest {
    Array(Vec<RawEvent>),
    One(Box<RawEvent>),
    Batch(BatchedRequest),
}

/// `BatchedRequest`.
#[derive(Deserialize)]
struct BatchedRequest {
    #[serde(alias = "api_key")]
    token: Option<String>,
    batch: Vec<RawEvent>,
}

/// `RawEvent` (the fields capture reads).
#[derive(Deserialize)]
struct RawEvent {
    #[serde(alias = "$token", alias = "api_key")]
    token: Option<String>,
    #[serde(alias = "$distinct_id")]
    distinct_id: Option<Value>,
    #[serde(default, deserialize_with = "uuid_or_empty")]
    uuid: Option<String>,
    event: String,
    #[serde(default)]
    properties: Map<String, Value>,
    timestamp: Option<String>,
}

impl RawEvent {
    /// `RawEvent::extract_token`: the event's token, else `properties.token`.
    fn extract_token(&self) -> Option<String> {
        self.token.clone().or_else(|| {
            self.properties
                .get("token")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }
}

/// Capture's `uuid` is a `Uuid`: an empty string counts as absent, anything else must parse.
fn uuid_or_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) if tokens::is_uuid(&text) => Ok(Some(text)),
        Some(text) => Err(serde::de::Error::custom(format!("invalid uuid: {text}"))),
    }
}

/// `validate_token` (`rust/capture/src/token.rs`): shape only.
fn validate_token(token: &str) -> Result<&str, &'static str> {
    let token = token.trim();
    if token.is_empty() {
        Err("empty")
    } else if token.len() > 64 {
        Err("too_long")
    } else if !token.is_ascii() {
        Err("not_ascii")
    } else if token.starts_with("phx_") {
        Err("personal_api_key")
    } else if token.contains('\0') {
        Err("null_byte")
    } else {
        Ok(token)
    }
}

fn bad_request(message: impl Into<String>) -> ApiResponse {
    ApiResponse::text(400, message)
}

fn unauthorized(message: impl Into<String>) -> ApiResponse {
    ApiResponse::text(401, message)
}

impl World {
    pub(crate) fn capture(&mut self, request: &ApiRequest, body_limit: usize) -> Reply {
        if request.method != Method::POST {
            // GET with a `data` query parameter and CORS preflights are not modelled.
            return Err(ApiResponse::empty(405));
        }
        if request.body.len() > body_limit {
            return Err(ApiResponse::text(413, "maximum event size exceeded"));
        }
        // Gzip is recognised by its magic bytes, whatever `?compression=` says, and inflated
        // up to the route's limit.
        let inflated;
        let body: &[u8] = if request.body.starts_with(&[0x1f, 0x8b, 0x08]) {
            inflated = gunzip(&request.body, body_limit)?;
            &inflated
        } else {
            &request.body
        };
        let text = std::str::from_utf8(body)
            .map_err(|_| bad_request("failed to decode request: invalid body encoding"))?;
        let raw: RawRequest = serde_json::from_str(text)
            .map_err(|error| bad_request(format!("failed to parse request: {error}")))?;
        let (batch_token, events) = match raw {
            RawRequest::Array(events) => (None, events),
            RawRequest::One(event) => (None, vec![*event]),
            RawRequest::Batch(batch) => (batch.token, batch.batch),
        };
        if events.is_empty() {
            return Err(bad_request("request holds no event"));
        }
        // `extract_and_verify_token`: a batch's own token wins; otherwise all events that
        // carry one must agree.
        let token = match batch_token {
            Some(token) => token,
            None => {
                let mut distinct: Vec<String> =
                    events.iter().filter_map(RawEvent::extract_token).collect();
                distinct.sort();
                distinct.dedup();
                match distinct.len() {
                    0 => return Err(unauthorized("event submitted without an api_key")),
                    1 => distinct.remove(0),
                    _ => {
                        return Err(unauthorized(
                            "batch submitted with inconsistent api_key values",
                        ));
                    }
                }
            }
        };
        let token = validate_token(&token)
            .map_err(|reason| unauthorized(format!("API key is not valid: {reason}")))?
            .to_owned();
        let project_id = self.project_by_token(&token).map(|project| project.id);
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            let distinct_id = match &event.distinct_id {
                Some(value) => Some(value),
                None => event.properties.get("distinct_id"),
            };
            let distinct_id = match distinct_id {
                None | Some(Value::Null) => {
                    return Err(bad_request("event submitted without a distinct_id"));
                }
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            };
            if distinct_id.is_empty() {
                return Err(bad_request("event submitted with an empty distinct_id"));
            }
            if event.event.is_empty() {
                return Err(bad_request("event submitted with an empty event name"));
            }
            accepted.push(CapturedEvent {
                path: request.path.clone(),
                token: token.clone(),
                project_id,
                event: event.event,
                distinct_id: distinct_id.chars().take(200).collect(),
                uuid: event.uuid,
                properties: event.properties,
                timestamp: event.timestamp,
                received_at: self.now,
            });
        }
        self.events.extend(accepted);
        Ok(ApiResponse::json(200, &serde_json::json!({"status": "Ok"})))
    }
}

/// The inflated `body`, refused when it is not gzip or inflates beyond `limit`.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiResponse> {
    use std::io::Read as _;
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| bad_request("failed to decode request: invalid gzip body"))?;
    if inflated.len() > limit {
        return Err(ApiResponse::text(413, "maximum event size exceeded"));
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_token_shape_like_capture() {
        assert_eq!(validate_token("  phc_abc\n"), Ok("phc_abc"));
        assert_eq!(validate_token("   "), Err("empty"));
        assert_eq!(validate_token(&"x".repeat(65)), Err("too_long"));
        assert_eq!(validate_token("phc_é"), Err("not_ascii"));
        assert_eq!(validate_token("phx_hellothere"), Err("personal_api_key"));
        assert_eq!(validate_token("hello\0there"), Err("null_byte"));
    }
}
