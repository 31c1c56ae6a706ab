//! Sending calls to PostHog: the upstream URIs, the headers that cross the proxy, and the
//! pooled HTTP(S) client.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::BoxError;
use crate::answer::ProxyBody;

/// Request headers a client may not send to PostHog through the proxy: its own credential
/// (replaced by the injected one), cookies (a PostHog web session would bypass the scope
/// check), the proxy's host, and method overrides (which would change the action PostHog
/// runs after the proxy checked another).
const DROPPED_FROM_CLIENTS: [HeaderName; 6] = [
    AUTHORIZATION,
    COOKIE,
    HOST,
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// The headers of a private call as PostHog gets them: the client's end-to-end headers, less
/// what [`DROPPED_FROM_CLIENTS`] lists, with `authorization` injected.
pub(crate) fn private_headers(headers: &mut HeaderMap, authorization: &HeaderValue) {
    hogguard_gateway::remove_hop_by_hop(headers);
    for name in &DROPPED_FROM_CLIENTS {
        headers.remove(name);
    }
    headers.insert(AUTHORIZATION, authorization.clone());
}

/// The headers of a public call: untouched but for hop-by-hop headers and `Host`, and a
/// client token sent by mistake as a Bearer token, which must never leave the proxy.
pub(crate) fn public_headers(headers: &mut HeaderMap) {
    hogguard_gateway::remove_hop_by_hop(headers);
    headers.remove(HOST);
    let carries_client_token = headers.get_all(AUTHORIZATION).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|value| value.contains(crate::clients::TOKEN_PREFIX))
    });
    if carries_client_token {
        headers.remove(AUTHORIZATION);
    }
}

/// A base URL to send calls to: scheme, authority and a path prefix without a trailing slash.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    scheme: Scheme,
    authority: Authority,
    prefix: String,
    /// For logs.
    text: String,
}

/// A base URL that is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUpstream {
    /// Not a URI.
    #[error("`{url}` cannot be used as PostHog's address")]
    Uri {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// A URI without a host.
    #[error("`{url}` names no host to send PostHog's calls to")]
    NoHost {
        /// The URL as given.
        url: String,
    },
}

impl Base {
    pub(crate) fn parse(url: &str) -> Result<Base, InvalidUpstream> {
        let uri: Uri = url.parse().map_err(|source| InvalidUpstream::Uri {
            url: url.to_owned(),
            source,
        })?;
        let parts = uri.into_parts();
        let scheme = parts.scheme.unwrap_or(Scheme::HTTPS);
        let authority = parts.authority.ok_or_else(|| InvalidUpstream::NoHost {
            url: url.to_owned(),
        })?;
        let prefix = parts
            .path_and_query
            .map(|p| p.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Base {
            scheme,
            authority,
            prefix,
            text: url.to_owned(),
        })
    }

    /// This base with the request target `path_and_query` appended.
    pub(crate) fn join(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let target = path_and_query.map_or("/", PathAndQuery::as_str);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{target}", self.prefix))
            .build()
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// The pooled client PostHog is called with.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, ProxyBody>,
}

impl Upstream {
    pub(crate) fn new() -> Result<Upstream, BoxError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(tls);
        Ok(Upstream { client })
    }

    pub(crate) async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}

/// The bytes of a buffered body, for the answers the proxy reads (a `429`'s wait).
pub(crate) async fn collect(body: Incoming, limit: usize) -> Result<Bytes, BoxError> {
    use http_body_util::BodyExt as _;
    Ok(http_body_util::Limited::new(body, limit)
        .collect()
        .await?
        .to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn private_calls_carry_only_the_injected_credential() {
        let mut sent = headers(&[
            ("authorization", "Bearer hgp_client"),
            ("cookie", "sessionid=abc"),
            ("host", "127.0.0.1:8788"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-http-method-override", "DELETE"),
            ("content-type", "application/json"),
            ("if-none-match", "\"abc\""),
            ("user-agent", "posthog-python/7"),
        ]);
        private_headers(&mut sent, &HeaderValue::from_static("Bearer phx_injected"));
        let mut names: Vec<&str> = sent.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "authorization",
                "content-type",
                "if-none-match",
                "user-agent"
            ]
        );
        assert_eq!(sent.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(sent[AUTHORIZATION], "Bearer phx_injected");
    }

    #[test]
    fn public_calls_keep_the_project_key_but_never_a_client_token() {
        let mut capture_v1 = headers(&[("authorization", "Bearer phc_public"), ("host", "proxy")]);
        public_headers(&mut capture_v1);
        assert_eq!(capture_v1[AUTHORIZATION], "Bearer phc_public");
        assert!(capture_v1.get(HOST).is_none());
        let mut mistaken = headers(&[("authorization", "Bearer hgp_client")]);
        public_headers(&mut mistaken);
        assert!(mistaken.get(AUTHORIZATION).is_none());
    }

    #[test]
    fn upstream_uris_keep_the_target_as_received() {
        let base = Base::parse("https://eu.posthog.com/prefix/").unwrap();
        let target: PathAndQuery = "/api/projects/1/feature%5Fflags/?limit=5".parse().unwrap();
        assert_eq!(
            base.join(Some(&target)).unwrap().to_string(),
            "https://eu.posthog.com/prefix/api/projects/1/feature%5Fflags/?limit=5"
        );
        assert!(Base::parse("not a url at all").is_err());
    }
}
