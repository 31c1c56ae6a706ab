//! Requests as the handlers see them, and responses in PostHog's wire formats: the
//! drf-exceptions-hog error envelope of the private API and the plain-text errors of capture.

use std::net::IpAddr;

use hyper::body::Bytes;
use hyper::{HeaderMap, Method};
use serde::Serialize;

/// An HTTP request with its body read and its query string decoded.
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) raw_query: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) peer: IpAddr,
}

impl ApiRequest {
    /// The first value of query parameter `name`.
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of header `name` when it is valid UTF-8.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The media type of the body without parameters, lowercased (`application/json`).
    pub(crate) fn media_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// The path split into segments, ignoring one trailing slash as PostHog's router does.
    pub(crate) fn segments(&self) -> Vec<&str> {
        let path = self.path.strip_suffix('/').unwrap_or(&self.path);
        path.split('/').skip(1).collect()
    }
}

/// Decodes an `application/x-www-form-urlencoded` query string.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query-string value.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A response ready to be written.
#[derive(Clone, Debug)]
pub(crate) struct ApiResponse {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) body: Vec<u8>,
}

/// A handler's outcome: errors are responses too, so `?` short-circuits to them.
pub(crate) type Reply = Result<ApiResponse, ApiResponse>;

impl ApiResponse {
    /// `value` as compact JSON, which is what DRF's `JSONRenderer` writes.
    pub(crate) fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        ApiResponse {
            status,
            content_type: Some("application/json"),
            body: serde_json::to_vec(value).expect("response bodies serialize"),
        }
    }

    /// A `text/plain` body, as capture's `(StatusCode, String)` errors are written.
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        ApiResponse {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            body: body.into().into_bytes(),
        }
    }

    /// No body (DRF's 204 after a delete).
    pub(crate) fn empty(status: u16) -> Self {
        ApiResponse {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// The drf-exceptions-hog envelope `{"type","code","detail","attr"}`.
    pub(crate) fn error(
        status: u16,
        kind: ErrorType,
        code: &str,
        detail: &str,
        attr: Option<&str>,
    ) -> Self {
        ApiResponse::json(
            status,
            &ErrorEnvelope {
                kind: kind.as_str(),
                code,
                detail,
                attr,
            },
        )
    }
}

/// The error envelope of PostHog's private API, fields in drf-exceptions-hog's order.
#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    detail: &'a str,
    attr: Option<&'a str>,
}

/// The `type` of an error envelope.
#[derive(Clone, Copy)]
pub(crate) enum ErrorType {
    Authentication,
    InvalidRequest,
    Validation,
    Throttled,
    Server,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Authentication => "authentication_error",
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Validation => "validation_error",
            ErrorType::Throttled => "throttled_error",
            ErrorType::Server => "server_error",
        }
    }
}

/// 401 `not_authenticated`: no credential was recognised.
pub(crate) fn not_authenticated() -> ApiResponse {
    ApiResponse::error(
        401,
        ErrorType::Authentication,
        "not_authenticated",
        "Authentication credentials were not provided.",
        None,
    )
}

/// 401 `authentication_failed` with `detail`.
pub(crate) fn authentication_failed(detail: &str) -> ApiResponse {
    ApiResponse::error(
        401,
        ErrorType::Authentication,
        "authentication_failed",
        detail,
        None,
    )
}

/// 403 `permission_denied` with `detail`.
pub(crate) fn permission_denied(detail: &str) -> ApiResponse {
    ApiResponse::error(
        403,
        ErrorType::Authentication,
        "permission_denied",
        detail,
        None,
    )
}

/// The 403 every personal-API-key-unsupported action gives.
pub(crate) fn personal_api_key_unsupported() -> ApiResponse {
    permission_denied("This action does not support Personal API Key access")
}

/// 404 `not_found` with `detail` (`Not found.` for a missing object).
pub(crate) fn not_found(detail: &str) -> ApiResponse {
    ApiResponse::error(404, ErrorType::InvalidRequest, "not_found", detail, None)
}

/// 405 for a method the view does not map.
pub(crate) fn method_not_allowed(method: &Method) -> ApiResponse {
    ApiResponse::error(
        405,
        ErrorType::InvalidRequest,
        "method_not_allowed",
        &format!("Method \"{method}\" not allowed."),
        None,
    )
}

/// 400 `validation_error`; drf-exceptions-hog rewrites DRF's `invalid` code to `invalid_input`.
pub(crate) fn validation_error(code: &str, detail: &str, attr: Option<&str>) -> ApiResponse {
    let code = if code == "invalid" {
        "invalid_input"
    } else {
        code
    };
    ApiResponse::error(400, ErrorType::Validation, code, detail, attr)
}

/// The detail of DRF's `Throttled`: `Request was throttled.`, plus `Expected available in N
/// second(s).` when the wait is known (DRF rounds the wait up and uses the singular for 1).
pub(crate) fn throttled_detail(wait_seconds: Option<u64>) -> String {
    match wait_seconds {
        None => "Request was throttled.".to_owned(),
        Some(1) => "Request was throttled. Expected available in 1 second.".to_owned(),
        Some(wait) => format!("Request was throttled. Expected available in {wait} seconds."),
    }
}

/// 429 `throttled`.
pub(crate) fn throttled(wait_seconds: Option<u64>) -> ApiResponse {
    ApiResponse::error(
        429,
        ErrorType::Throttled,
        "throttled",
        &throttled_detail(wait_seconds),
        None,
    )
}

/// 500 as drf-exceptions-hog renders an unhandled exception.
pub(crate) fn server_error() -> ApiResponse {
    ApiResponse::error(
        500,
        ErrorType::Server,
        "error",
        "A server error occurred.",
        None,
    )
}

/// `request.data` of a DRF view that parses JSON: `{}` for an empty body, 415 for another media
/// type, 400 `parse_error` for broken JSON, and the serializer's complaint for a non-object.
pub(crate) fn json_object_body(
    request: &ApiRequest,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiResponse> {
    if request.body.is_empty() {
        return Ok(serde_json::Map::new());
    }
    let media_type = request.media_type();
    if media_type != "application/json" {
        return Err(ApiResponse::error(
            415,
            ErrorType::InvalidRequest,
            "unsupported_media_type",
            &format!("Unsupported media type \"{media_type}\" in request."),
            None,
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&request.body).map_err(|error| {
        ApiResponse::error(
            400,
            ErrorType::InvalidRequest,
            "parse_error",
            &format!("JSON parse error - {error}"),
            None,
        )
    })?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(validation_error(
            "invalid",
            &format!(
                "Invalid data. Expected a dictionary, but got {}.",
                python_type_name(&other)
            ),
            None,
        )),
    }
}

/// The Python type name DRF puts in its messages for a JSON value.
pub(crate) fn python_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "NoneType",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(number) if number.is_f64() => "float",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::String(_) => "str",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    }
}

/// A DRF `CharField` (trimmed, not blank, at most `max_length`) read from `data[field]`:
/// `Ok(None)` when absent and `required` is false.
pub(crate) fn char_field(
    data: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    max_length: usize,
    required: bool,
) -> Result<Option<String>, ApiResponse> {
    let text = match data.get(field) {
        None if required => {
            return Err(validation_error(
                "required",
                "This field is required.",
                Some(field),
            ));
        }
        None => return Ok(None),
        Some(serde_json::Value::Null) => {
            return Err(validation_error(
                "null",
                "This field may not be null.",
                Some(field),
            ));
        }
        Some(serde_json::Value::String(text)) => text.trim().to_owned(),
        Some(serde_json::Value::Number(number)) => number.to_string(),
        Some(_) => {
            return Err(validation_error(
                "invalid",
                "Not a valid string.",
                Some(field),
            ));
        }
    };
    if text.is_empty() {
        return Err(validation_error(
            "blank",
            "This field may not be blank.",
            Some(field),
        ));
    }
    if text.chars().count() > max_length {
        return Err(validation_error(
            "max_length",
            &format!("Ensure this field has no more than {max_length} characters."),
            Some(field),
        ));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_strings() {
        assert_eq!(
            parse_query("a=1&b=x%2By+z&flag&c=%zz"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x+y z".to_owned()),
                ("flag".to_owned(), String::new()),
                ("c".to_owned(), "%zz".to_owned()),
            ]
        );
    }

    #[test]
    fn envelope_is_compact_and_ordered() {
        let body = String::from_utf8(not_authenticated().body).unwrap();
        assert_eq!(
            body,
            r#"{"type":"authentication_error","code":"not_authenticated","detail":"Authentication credentials were not provided.","attr":null}"#
        );
        assert_eq!(
            throttled_detail(Some(1)),
            "Request was throttled. Expected available in 1 second."
        );
    }
}
