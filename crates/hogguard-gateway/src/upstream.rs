//! Where verified deliveries go: the upstream URL, checked when it is parsed.

use std::fmt;
use std::str::FromStr;

use http::Uri;
use http::uri::{Authority, PathAndQuery};

/// The plain-HTTP address verified deliveries are forwarded to, such as
/// `http://127.0.0.1:8080` or `http://app:8080/webhooks`.
///
/// A request for `/posthog?x=1` is forwarded to the upstream's path followed by `/posthog?x=1`
/// (`http://app:8080/webhooks/posthog?x=1`). Only `http` is accepted: the upstream runs on the
/// same host or a private network, and TLS to the outside world is terminated in front of the
/// gateway.
///
/// ```
/// use hogguard_gateway::Upstream;
///
/// let upstream: Upstream = "http://127.0.0.1:8080/webhooks".parse()?;
/// assert_eq!(upstream.to_string(), "http://127.0.0.1:8080/webhooks");
/// assert!("https://example.com".parse::<Upstream>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    authority: Authority,
    /// The upstream URL's path without its trailing `/`, so that joining a request path (which
    /// starts with `/`) gives no double slash; empty for the root.
    base_path: String,
}

impl Upstream {
    /// Returns the host and port requests are sent to.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Returns the upstream URI for a request received for `uri` (its path and query).
    pub(crate) fn uri_for(&self, uri: &Uri) -> Result<Uri, http::Error> {
        let path_and_query = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let mut joined = String::with_capacity(self.base_path.len() + path_and_query.len() + 1);
        joined.push_str(&self.base_path);
        if !path_and_query.starts_with('/') {
            joined.push('/');
        }
        joined.push_str(path_and_query);
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(joined)
            .build()
    }
}

impl FromStr for Upstream {
    type Err = InvalidUpstream;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let uri: Uri = text.parse().map_err(|_| InvalidUpstream::NotAUrl)?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(InvalidUpstream::Https),
            _ => return Err(InvalidUpstream::NotHttp),
        }
        let authority = uri.authority().ok_or(InvalidUpstream::MissingHost)?;
        if authority.as_str().contains('@') {
            return Err(InvalidUpstream::Credentials);
        }
        if authority.host().is_empty() {
            return Err(InvalidUpstream::MissingHost);
        }
        if uri.query().is_some() {
            return Err(InvalidUpstream::Query);
        }
        Ok(Self {
            authority: authority.clone(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base_path)
    }
}

/// Why a text is not a usable upstream URL.
///
/// The messages never repeat the text, which could hold credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUpstream {
    /// The text does not parse as an absolute URL.
    #[error("the upstream is not a URL such as http://127.0.0.1:8080")]
    NotAUrl,
    /// The URL's scheme is not `http`.
    #[error("the upstream URL must start with http://")]
    NotHttp,
    /// The URL's scheme is `https`, which the gateway does not speak.
    #[error(
        "the gateway forwards over plain HTTP only (no TLS client): use an http:// upstream on \
         the same host or a private network"
    )]
    Https,
    /// The URL names no host.
    #[error("the upstream URL has no host")]
    MissingHost,
    /// The URL carries a user name or password.
    #[error("the upstream URL must not contain credentials")]
    Credentials,
    /// The URL has a query string, which forwarded requests bring themselves.
    #[error("the upstream URL must not have a query string")]
    Query,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_paths_are_joined_without_double_slashes() {
        let cases = [
            (
                "http://127.0.0.1:8080",
                "/hook?a=1",
                "http://127.0.0.1:8080/hook?a=1",
            ),
            (
                "http://127.0.0.1:8080/",
                "/hook",
                "http://127.0.0.1:8080/hook",
            ),
            (
                "http://app:81/base/",
                "/hook?x",
                "http://app:81/base/hook?x",
            ),
            ("http://app/base", "/", "http://app/base/"),
            ("http://[::1]:9000", "*", "http://[::1]:9000/*"),
        ];
        for (upstream, request, expected) in cases {
            let upstream: Upstream = upstream.parse().unwrap();
            let joined = upstream.uri_for(&request.parse().unwrap()).unwrap();
            assert_eq!(joined.to_string(), expected, "{upstream} + {request}");
        }
    }

    #[test]
    fn unusable_upstreams_are_refused_without_echoing_them() {
        let cases = [
            ("not a url", InvalidUpstream::NotAUrl),
            ("/relative", InvalidUpstream::NotHttp),
            ("ftp://host", InvalidUpstream::NotHttp),
            ("https://host", InvalidUpstream::Https),
            ("http://user:hunter2@host", InvalidUpstream::Credentials),
            ("http://host/?q=1", InvalidUpstream::Query),
        ];
        for (text, expected) in cases {
            let err = text.parse::<Upstream>().unwrap_err();
            assert_eq!(err, expected, "{text}");
            assert!(!err.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn upstream_displays_as_its_url() {
        let upstream: Upstream = "http://app:8080/base/".parse().unwrap();
        assert_eq!(upstream.to_string(), "http://app:8080/base");
        assert_eq!(upstream.authority().as_str(), "app:8080");
    }
}
