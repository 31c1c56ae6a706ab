//! One HTTP exchange with PostHog, and the retry loop around it.
//!
//! Credentials travel only in the `Authorization` header (or, for the leaked-key report and
//! capture, in the JSON body), never in a URL. Redirects are not followed: PostHog's API does
//! not redirect, and following one would either drop the header (turning a live key into a
//! false "invalid") or, with a careless client, send it to another host.

use std::io;
use std::time::Duration;

use hogguard_secret::Secret;
use serde::de::DeserializeOwned;
use ureq::http::HeaderValue;
use zeroize::Zeroize;

use crate::config::{ClientConfig, RetryPolicy};
use crate::error::{self, Error, NetworkError};

/// The HTTP methods this client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

/// Whether a call may be sent again after a server error or a cut connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Repeating it does no harm (reads, deletes, captures with event uuids).
    Safe,
    /// The first attempt may have taken effect (creating or rolling a key, reporting a leak).
    Unsafe,
}

/// One request to send.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) bearer: Option<&'a Secret>,
    /// The serialised JSON body; it may hold a credential (capture, leaked-key reports).
    pub(crate) json_body: Option<Vec<u8>>,
    pub(crate) repeat: Repeat,
    /// A credential carried in the body, scrubbed from error details like the bearer.
    pub(crate) body_secret: Option<&'a Secret>,
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if let Some(body) = &mut self.json_body {
            body.zeroize();
        }
    }
}

impl<'a> Call<'a> {
    /// A GET with `bearer`, safe to repeat.
    pub(crate) fn get(url: String, bearer: &'a Secret) -> Call<'a> {
        Call {
            method: Method::Get,
            url,
            bearer: Some(bearer),
            json_body: None,
            repeat: Repeat::Safe,
            body_secret: None,
        }
    }
}

/// A 2xx answer. Its body may hold a new secret (create and roll), so it is zeroed on drop.
pub(crate) struct Answer {
    body: String,
}

impl Answer {
    /// The body parsed as `T`. A parse error names only its position: serde's message could
    /// quote a value from the body, and the body may hold a secret.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.body).map_err(|error| Error::InvalidResponse {
            detail: format!(
                "{:?} error in the JSON at line {} column {}",
                error.classify(),
                error.line(),
                error.column()
            ),
        })
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.body.zeroize();
    }
}

/// The HTTP agent and the settings its calls follow. Cheap to clone; clones share connections.
#[derive(Clone)]
pub(crate) struct Transport {
    agent: ureq::Agent,
    config: ClientConfig,
}

impl Transport {
    pub(crate) fn new(config: &ClientConfig) -> Transport {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(config.timeout_duration()))
            .user_agent(concat!("hogguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Transport {
            agent,
            config: config.clone(),
        }
    }

    /// Sends `call`, retrying as the [`RetryPolicy`] allows.
    pub(crate) fn send(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let mut retries = Retries::default();
        loop {
            match self.send_once(call) {
                Ok(answer) => return Ok(answer),
                Err(error) => {
                    match retries.next_delay(self.config.retry_policy(), &error, call.repeat) {
                        Some(delay) => self.config.sleep(delay),
                        None => return Err(error),
                    }
                }
            }
        }
    }

    /// GETs `url` with `bearer` and parses the answer.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        url: String,
        bearer: &Secret,
    ) -> Result<T, Error> {
        self.send(&Call::get(url, bearer))?.json()
    }

    fn send_once(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let secrets: Vec<&Secret> = call
            .bearer
            .iter()
            .chain(&call.body_secret)
            .copied()
            .collect();
        let authorization = call.bearer.map(bearer_header).transpose()?;
        let result = match call.method {
            Method::Get | Method::Delete => {
                let mut request = if call.method == Method::Get {
                    self.agent.get(&call.url)
                } else {
                    self.agent.delete(&call.url)
                };
                if let Some(value) = authorization {
                    request = request.header("Authorization", value);
                }
                request.call()
            }
            Method::Post => {
                let mut request = self
                    .agent
                    .post(&call.url)
                    .header("Content-Type", "application/json");
                if let Some(value) = authorization {
                    request = request.header("Authorization", value);
                }
                request.send(call.json_body.as_deref().unwrap_or_default())
            }
        };
        let timeout = self.config.timeout_duration();
        let mut response = result.map_err(|error| transport_failure(error, timeout, &secrets))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|error| transport_failure(error, timeout, &secrets))?;
        let answer = Answer { body };
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(error::from_response(status, &scrub(&answer.body, &secrets)))
        }
    }
}

/// `value` as a JSON request body.
pub(crate) fn json_body(value: &impl serde::Serialize) -> Vec<u8> {
    // The bodies are derived structs of strings, slices and JSON maps, which serde_json
    // always serialises.
    serde_json::to_vec(value).expect("request bodies serialise")
}

/// `Bearer <key>`, marked sensitive so the HTTP stack never prints it.
fn bearer_header(secret: &Secret) -> Result<HeaderValue, Error> {
    let mut text = format!("Bearer {}", secret.expose());
    let value = HeaderValue::from_str(&text);
    text.zeroize();
    let mut value = value.map_err(|_| Error::UnsupportedCredential {
        kind: "value with control characters",
        why: "it cannot be sent in an HTTP header",
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A transport failure as an [`Error`]: timeouts apart, everything is a network error.
fn transport_failure(error: ureq::Error, timeout: Duration, secrets: &[&Secret]) -> Error {
    match error {
        ureq::Error::Timeout(_) => Error::Timeout { timeout },
        ureq::Error::Io(io_error) if io_error.kind() == io::ErrorKind::TimedOut => {
            Error::Timeout { timeout }
        }
        other => Error::Network {
            source: NetworkError::new(scrub(&other.to_string(), secrets)),
        },
    }
}

/// `text` with every occurrence of a secret replaced by its mask.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.expose().is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.expose(), &secret.mask())
        })
}

/// The retries a call has used so far.
#[derive(Default)]
struct Retries {
    throttled: u32,
    failed: u32,
}

impl Retries {
    /// How long to wait before sending the call again, or `None` to give up with `error`.
    fn next_delay(
        &mut self,
        policy: &RetryPolicy,
        error: &Error,
        repeat: Repeat,
    ) -> Option<Duration> {
        match error {
            Error::Throttled { wait, .. } if self.throttled < policy.throttle_retries => {
                let delay = wait.unwrap_or_else(|| policy.backoff_delay(self.throttled));
                if delay > policy.max_throttle_wait {
                    return None;
                }
                self.throttled += 1;
                Some(delay)
            }
            Error::Server { .. } | Error::Network { .. }
                if repeat == Repeat::Safe && self.failed < policy.server_retries =>
            {
                let delay = policy.backoff_delay(self.failed);
                self.failed += 1;
                Some(delay)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error() -> Error {
        Error::Server {
            status: 500,
            detail: String::new(),
        }
    }

    fn throttled(wait: Option<u64>) -> Error {
        Error::Throttled {
            wait: wait.map(Duration::from_secs),
            detail: String::new(),
        }
    }

    #[test]
    fn server_errors_are_retried_only_when_repeatable() {
        let policy = RetryPolicy::default();
        let mut retries = Retries::default();
        let delays: Vec<Option<Duration>> = (0..3)
            .map(|_| retries.next_delay(&policy, &server_error(), Repeat::Safe))
            .collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_millis(500)),
                Some(Duration::from_millis(1000)),
                None
            ]
        );
        let mut retries = Retries::default();
        assert_eq!(
            retries.next_delay(&policy, &server_error(), Repeat::Unsafe),
            None
        );
        let cut = Error::Network {
            source: NetworkError::new("reset".to_owned()),
        };
        assert_eq!(retries.next_delay(&policy, &cut, Repeat::Unsafe), None);
        assert_eq!(
            retries.next_delay(&policy, &cut, Repeat::Safe),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn throttling_honours_the_announced_wait_within_bounds() {
        let policy = RetryPolicy::default();
        let mut retries = Retries::default();
        assert_eq!(
            retries.next_delay(&policy, &throttled(Some(7)), Repeat::Unsafe),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retries.next_delay(&policy, &throttled(None), Repeat::Unsafe),
            Some(Duration::from_millis(1000))
        );
        assert_eq!(
            retries.next_delay(&policy, &throttled(Some(61)), Repeat::Safe),
            None
        );
        assert_eq!(
            retries.next_delay(&policy, &throttled(Some(1)), Repeat::Safe),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retries.next_delay(&policy, &throttled(Some(1)), Repeat::Safe),
            None
        );
    }

    #[test]
    fn timeouts_and_refusals_are_not_retried() {
        let policy = RetryPolicy::default();
        let mut retries = Retries::default();
        for error in [
            Error::Timeout {
                timeout: Duration::from_secs(1),
            },
            Error::NotFound {
                detail: String::new(),
            },
            Error::PersonalKeyNotAllowed,
        ] {
            assert_eq!(retries.next_delay(&policy, &error, Repeat::Safe), None);
        }
    }

    #[test]
    fn scrub_replaces_secrets_with_masks() {
        let key = Secret::new("phx_abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMN");
        let empty = Secret::new("");
        assert_eq!(
            scrub(&format!("bad token {} here", key.expose()), &[&key, &empty]),
            "bad token phx_...KLMN here"
        );
        assert_eq!(scrub("nothing", &[&empty]), "nothing");
    }
}
