//! The crate's error type, and how PostHog's answers become one.
//!
//! PostHog's private API reports errors in drf-exceptions-hog's envelope
//! `{"type","code","detail","attr"}`; the `code` (not the status) decides what went wrong,
//! because an invalid credential can come back as 401 or 403. Capture answers in plain text.

use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong talking to PostHog. Details come from PostHog's answer with
/// any credential involved in the request replaced by its mask, so no variant's `Display` or
/// `Debug` shows a raw key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// PostHog does not know the credential (`code == "authentication_failed"`, status 401 or
    /// 403), or capture refused the token's shape (plain-text 401).
    #[error("PostHog rejected the credential (HTTP {status}): {detail}")]
    InvalidCredential {
        /// The HTTP status.
        status: u16,
        /// PostHog's `detail`, e.g. `Personal API key found in request Authorization header is
        /// invalid.`
        detail: String,
    },
    /// The request carried no credential PostHog recognised (`not_authenticated`).
    #[error("PostHog saw no credential it accepts here: {detail}")]
    NotAuthenticated {
        /// PostHog's `detail`.
        detail: String,
    },
    /// The key is valid but lacks the scope the action needs.
    #[error("the key lacks the scope `{scope}`")]
    MissingScope {
        /// The scope PostHog named, e.g. `project:write`.
        scope: String,
    },
    /// The action is one PostHog allows only through web login, whatever the key's scopes.
    #[error("PostHog does not allow this action with a personal API key")]
    PersonalKeyNotAllowed,
    /// Any other refusal (project or organisation restrictions, membership level).
    #[error("PostHog denied permission: {detail}")]
    PermissionDenied {
        /// PostHog's `detail`.
        detail: String,
    },
    /// PostHog refused the request's content.
    #[error("PostHog refused the request ({code}{}): {detail}", attr.as_deref().map(|a| format!(", field `{a}`")).unwrap_or_default())]
    Validation {
        /// PostHog's `code`, e.g. `invalid_input`, `required`.
        code: String,
        /// PostHog's `detail`.
        detail: String,
        /// The field at fault, if PostHog named one.
        attr: Option<String>,
    },
    /// The project, key or route does not exist (or is not visible to this key).
    #[error("not found: {detail}")]
    NotFound {
        /// PostHog's `detail`.
        detail: String,
    },
    /// PostHog throttled the request and the retry budget could not absorb it.
    #[error("PostHog throttled the request{}: {detail}", wait.map(|w| format!(" (available again in {} s)", w.as_secs())).unwrap_or_default())]
    Throttled {
        /// The wait PostHog announced in `detail`, if any.
        wait: Option<Duration>,
        /// PostHog's `detail`.
        detail: String,
    },
    /// PostHog or its load balancer failed (5xx), after any retries the call allows.
    #[error("PostHog server error (HTTP {status}): {detail}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The body's `detail`, or the start of a non-JSON body.
        detail: String,
    },
    /// A status this client does not expect (a redirect, 405, 413, ...).
    #[error("unexpected answer from PostHog (HTTP {status}): {detail}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The body's `detail`, or the start of the body.
        detail: String,
    },
    /// A successful answer this client cannot read.
    #[error("unreadable answer from PostHog: {detail}")]
    InvalidResponse {
        /// What did not parse.
        detail: String,
    },
    /// The connection failed or was cut before an answer arrived.
    #[error("network error talking to PostHog")]
    Network {
        /// What the transport said.
        #[source]
        source: NetworkError,
    },
    /// No complete answer within the configured timeout.
    #[error("PostHog did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// A read-only client was given a key that can write.
    #[error("a read-only client refuses this key: it holds the write scope `{scope}`")]
    ReaderHoldsWriteScope {
        /// The offending scope (`*` or `<object>:write`).
        scope: String,
    },
    /// A writer client was given a key without the write scope its operations need.
    #[error("a writer client needs a key with the scope `{scope}`, which this key lacks")]
    WriterLacksScope {
        /// The missing scope.
        scope: String,
    },
    /// The credential is of a kind this operation cannot use.
    #[error("a {kind} cannot be used here: {why}")]
    UnsupportedCredential {
        /// The credential kind's name (`project_api_key`, ...).
        kind: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// A configured host is not a usable base URL.
    #[error("invalid PostHog host {host:?}: {reason}")]
    InvalidHost {
        /// The configured value (not shown when it holds user info).
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why the transport could not reach PostHog, as it described it (with any credential of the
/// request masked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct NetworkError {
    description: String,
}

impl NetworkError {
    pub(crate) fn new(description: String) -> Self {
        NetworkError { description }
    }
}

impl Error {
    /// The message followed by its causes (`network error talking to PostHog: io: ...`), for
    /// reports that keep an error as text, such as a key's `unknown` reason.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }

    /// Whether the failure says nothing about the credential: PostHog or the network failed
    /// to answer (5xx, throttling, network, timeout), so asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Server { .. }
                | Error::Throttled { .. }
                | Error::Network { .. }
                | Error::Timeout { .. }
        )
    }
}

/// The detail PostHog gives when a personal API key may not perform an action.
const PERSONAL_KEY_NOT_ALLOWED: &str = "This action does not support Personal API Key access";
/// The start of PostHog's missing-scope detail, `API key missing required scope 'x:y'`.
const MISSING_SCOPE_PREFIX: &str = "API key missing required scope '";
/// The start of the wait in DRF's throttle detail, `Expected available in N second(s).`
const WAIT_PREFIX: &str = "Expected available in ";
/// Non-JSON bodies (HTML error pages) are cut to this many characters in an error.
const MAX_TEXT_DETAIL: usize = 300;

/// drf-exceptions-hog's error envelope.
#[derive(Deserialize)]
struct Envelope {
    code: Option<String>,
    detail: Option<String>,
    attr: Option<String>,
}

/// The error a non-2xx answer stands for. `body` must already be scrubbed of credentials.
pub(crate) fn from_response(status: u16, body: &str) -> Error {
    let envelope = serde_json::from_str::<Envelope>(body).ok();
    let (code, detail, attr) = match envelope {
        Some(envelope) => (
            envelope.code,
            envelope.detail.unwrap_or_default(),
            envelope.attr,
        ),
        None => (
            None,
            body.trim().chars().take(MAX_TEXT_DETAIL).collect(),
            None,
        ),
    };
    match (status, code.as_deref()) {
        (_, Some("authentication_failed")) => Error::InvalidCredential { status, detail },
        (_, Some("not_authenticated")) => Error::NotAuthenticated { detail },
        (429, _) | (_, Some("throttled")) => Error::Throttled {
            wait: announced_wait(&detail),
            detail,
        },
        (500..=599, _) => Error::Server { status, detail },
        (401, _) => Error::InvalidCredential { status, detail },
        (403, _) => permission_error(detail),
        (404, _) => Error::NotFound { detail },
        (400, _) => Error::Validation {
            code: code.unwrap_or_else(|| "invalid".to_owned()),
            detail,
            attr,
        },
        _ => Error::UnexpectedStatus { status, detail },
    }
}

/// Tells the kinds of `permission_denied` apart by PostHog's fixed messages.
fn permission_error(detail: String) -> Error {
    if detail == PERSONAL_KEY_NOT_ALLOWED {
        return Error::PersonalKeyNotAllowed;
    }
    match detail
        .strip_prefix(MISSING_SCOPE_PREFIX)
        .and_then(|rest| rest.strip_suffix('\''))
    {
        Some(scope) => Error::MissingScope {
            scope: scope.to_owned(),
        },
        None => Error::PermissionDenied { detail },
    }
}

/// The `N` of `Expected available in N second(s).` (PostHog sends no `Retry-After`).
fn announced_wait(detail: &str) -> Option<Duration> {
    let start = detail.find(WAIT_PREFIX)? + WAIT_PREFIX.len();
    let rest = &detail[start..];
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    let after = rest[digits.len()..].trim_start();
    if !after.starts_with("second") {
        return None;
    }
    digits.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_message_repeats_its_cause() {
        let network = Error::Network {
            source: NetworkError::new("io: Connection refused".to_owned()),
        };
        let errors = [
            network,
            from_response(
                401,
                r#"{"type":"authentication_error","code":"authentication_failed","detail":"bad","attr":null}"#,
            ),
            from_response(
                403,
                r#"{"type":"authentication_error","code":"permission_denied","detail":"API key missing required scope 'project:write'","attr":null}"#,
            ),
            from_response(500, "oops"),
            from_response(
                429,
                r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 3 seconds.","attr":null}"#,
            ),
        ];
        for error in &errors {
            hogguard_testkit::errors::assert_no_repeated_segment(error);
        }
        assert_eq!(
            hogguard_testkit::errors::chain(&errors[0]),
            ["network error talking to PostHog", "io: Connection refused"]
        );
        assert_eq!(
            errors[0].with_causes(),
            "network error talking to PostHog: io: Connection refused"
        );
    }

    #[test]
    fn invalid_credential_by_code_whatever_the_status() {
        let body = r#"{"type":"authentication_error","code":"authentication_failed","detail":"Personal API key found in request Authorization header is invalid.","attr":null}"#;
        let detail = "Personal API key found in request Authorization header is invalid.";
        assert_eq!(
            from_response(401, body),
            Error::InvalidCredential {
                status: 401,
                detail: detail.to_owned()
            }
        );
        assert_eq!(
            from_response(403, body),
            Error::InvalidCredential {
                status: 403,
                detail: detail.to_owned()
            }
        );
    }

    #[test]
    fn not_authenticated() {
        let body = r#"{"type":"authentication_error","code":"not_authenticated","detail":"Authentication credentials were not provided.","attr":null}"#;
        assert_eq!(
            from_response(401, body),
            Error::NotAuthenticated {
                detail: "Authentication credentials were not provided.".to_owned()
            }
        );
    }

    #[test]
    fn permission_denials_are_told_apart() {
        let denied = |detail: &str| {
            from_response(
                403,
                &format!(
                    r#"{{"type":"authentication_error","code":"permission_denied","detail":{},"attr":null}}"#,
                    serde_json::Value::from(detail)
                ),
            )
        };
        assert_eq!(
            denied("API key missing required scope 'insight:read'"),
            Error::MissingScope {
                scope: "insight:read".to_owned()
            }
        );
        assert_eq!(
            denied("This action does not support Personal API Key access"),
            Error::PersonalKeyNotAllowed
        );
        assert_eq!(
            denied("API key does not have access to the requested project: ID 7."),
            Error::PermissionDenied {
                detail: "API key does not have access to the requested project: ID 7.".to_owned()
            }
        );
    }

    #[test]
    fn validation_keeps_code_and_field() {
        let body = r#"{"type":"validation_error","code":"invalid_input","detail":"Invalid scope: invalid","attr":"scopes"}"#;
        let error = from_response(400, body);
        assert_eq!(
            error,
            Error::Validation {
                code: "invalid_input".to_owned(),
                detail: "Invalid scope: invalid".to_owned(),
                attr: Some("scopes".to_owned())
            }
        );
        assert_eq!(
            error.to_string(),
            "PostHog refused the request (invalid_input, field `scopes`): Invalid scope: invalid"
        );
    }

    #[test]
    fn throttle_wait_comes_from_detail() {
        let body = |detail: &str| {
            format!(
                r#"{{"type":"throttled_error","code":"throttled","detail":"{detail}","attr":null}}"#
            )
        };
        for (detail, wait) in [
            (
                "Request was throttled. Expected available in 1 seconds.",
                Some(1),
            ),
            (
                "Request was throttled. Expected available in 1 second.",
                Some(1),
            ),
            (
                "Request was throttled. Expected available in 86400 seconds.",
                Some(86400),
            ),
            ("Request was throttled.", None),
            ("Expected available in soon seconds.", None),
        ] {
            assert_eq!(
                from_response(429, &body(detail)),
                Error::Throttled {
                    wait: wait.map(Duration::from_secs),
                    detail: detail.to_owned()
                },
                "{detail}"
            );
        }
        assert_eq!(
            from_response(429, "rate limited"),
            Error::Throttled {
                wait: None,
                detail: "rate limited".to_owned()
            }
        );
    }

    #[test]
    fn server_errors_and_plain_text_bodies() {
        assert_eq!(
            from_response(
                500,
                r#"{"type":"server_error","code":"error","detail":"A server error occurred.","attr":null}"#
            ),
            Error::Server {
                status: 500,
                detail: "A server error occurred.".to_owned()
            }
        );
        assert_eq!(
            from_response(502, "Bad Gateway\n"),
            Error::Server {
                status: 502,
                detail: "Bad Gateway".to_owned()
            }
        );
        let long = "x".repeat(1000);
        match from_response(502, &long) {
            Error::Server { detail, .. } => assert_eq!(detail.len(), MAX_TEXT_DETAIL),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            from_response(401, "API key is not valid: personal_api_key"),
            Error::InvalidCredential {
                status: 401,
                detail: "API key is not valid: personal_api_key".to_owned()
            }
        );
        assert_eq!(
            from_response(
                404,
                r#"{"type":"invalid_request","code":"not_found","detail":"Not found.","attr":null}"#
            ),
            Error::NotFound {
                detail: "Not found.".to_owned()
            }
        );
        assert_eq!(
            from_response(301, ""),
            Error::UnexpectedStatus {
                status: 301,
                detail: String::new()
            }
        );
    }

    #[test]
    fn transient_errors() {
        assert!(
            Error::Timeout {
                timeout: Duration::from_secs(1)
            }
            .is_transient()
        );
        assert!(
            Error::Server {
                status: 503,
                detail: String::new()
            }
            .is_transient()
        );
        assert!(!Error::PersonalKeyNotAllowed.is_transient());
        assert!(
            !Error::InvalidCredential {
                status: 401,
                detail: String::new()
            }
            .is_transient()
        );
    }
}
