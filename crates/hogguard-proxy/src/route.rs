//! Which kind of call a request is: the proxy's own endpoints, PostHog's public endpoints
//! (passed through untouched), the endpoints PostHog serves with a project secret key, and the
//! rest of the private API, whose scope the table gives.

use std::sync::LazyLock;

use http::Method;

use crate::table::{Lookup, Requirement, ScopeTable};

/// Where services send their own audit entries (`POST`, with their client token), as the
/// segments of a decoded path (a trailing slash is the same endpoint).
pub(crate) const SERVICE_AUDIT_SEGMENTS: [&str; 2] = ["_hogguard", "audit"];

/// PostHog's public endpoints, which SDKs call with the public `phc_` project key: capture
/// (`rust/capture`'s routes, and capture v1 with the key as a Bearer token) and remote flag
/// evaluation. They go to the capture host untouched, as received.
const PUBLIC_PATHS: &[&str] = &[
    "/batch",
    "/e",
    "/i/v0/e",
    "/capture",
    "/track",
    "/engage",
    "/s",
    "/i/v0/ai",
    "/i/v1/analytics/events",
    "/flags",
    "/decide",
];

/// Whether `raw_path` (as received, undecoded) is one of PostHog's public endpoints, with or
/// without a trailing slash. Only the exact spellings count: any other spelling of the same
/// path is handled as a private call, so it needs a client token.
pub(crate) fn is_public(raw_path: &str) -> bool {
    let path = raw_path.strip_suffix('/').unwrap_or(raw_path);
    PUBLIC_PATHS.contains(&path)
}

/// Which PostHog host a private call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// The private API host.
    Api,
    /// The capture host, which also serves flag definitions (PostHog's feature-flags service).
    Ingest,
}

/// Which credential serves a private call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The personal API key.
    Personal,
    /// The project secret key when there is one (the least powerful credential PostHog
    /// serves the call with), else the personal key.
    SecretFirst,
}

/// What a private call needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Private<'t> {
    /// The endpoint as the table (or the proxy) names it; `None` when unknown.
    pub(crate) endpoint: Option<&'t str>,
    /// Its requirement; `None` when unknown.
    pub(crate) requirement: Option<&'t Requirement>,
    pub(crate) upstream: Upstream,
    pub(crate) credential: Credential,
}

static FEATURE_FLAG_READ: LazyLock<Requirement> = LazyLock::new(|| {
    Requirement::Scopes(vec![crate::Scope::object(
        "feature_flag",
        crate::Access::Read,
    )])
});

/// The private call at `segments` (decoded) for `method`.
pub(crate) fn private<'t>(
    table: &'t ScopeTable,
    method: &Method,
    segments: &[String],
) -> Private<'t> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let secret_served = |endpoint: &'static str, upstream| Private {
        endpoint: Some(endpoint),
        requirement: Some(&FEATURE_FLAG_READ),
        upstream,
        credential: Credential::SecretFirst,
    };
    let read = matches!(*method, Method::GET | Method::HEAD);
    match parts.as_slice() {
        // Local evaluation: PostHog's feature-flags service, and the older Django routes.
        ["flags", "definitions"] if read => {
            return secret_served("/flags/definitions", Upstream::Ingest);
        }
        ["api", "feature_flag", "local_evaluation"] if read => {
            return secret_served("/api/feature_flag/local_evaluation", Upstream::Api);
        }
        ["api", "projects", _, "feature_flags", "local_evaluation"] if read => {
            return secret_served(
                "/api/projects/{project_id}/feature_flags/local_evaluation",
                Upstream::Api,
            );
        }
        ["api", "projects", _, "feature_flags", _, "remote_config"] if read => {
            return secret_served(
                "/api/projects/{project_id}/feature_flags/{id}/remote_config",
                Upstream::Api,
            );
        }
        _ => {}
    }
    match table.lookup(method, segments) {
        Lookup::Known {
            template,
            requirement,
        } => Private {
            endpoint: Some(template),
            requirement: Some(requirement),
            upstream: Upstream::Api,
            credential: Credential::Personal,
        },
        Lookup::Unknown => Private {
            endpoint: None,
            requirement: None,
            upstream: Upstream::Api,
            credential: Credential::Personal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::segments;

    #[test]
    fn public_paths_are_matched_as_spelled_only() {
        for path in [
            "/batch",
            "/batch/",
            "/i/v0/e/",
            "/flags",
            "/decide/",
            "/i/v1/analytics/events",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/batch%2F",
            "/BATCH",
            "//batch",
            "/flags/definitions",
            "/api/batch",
            "/i/v0/e/x",
        ] {
            assert!(!is_public(path), "{path}");
        }
    }

    #[test]
    fn flag_definitions_and_remote_config_prefer_the_secret_key() {
        let table = ScopeTable::built_in();
        for (path, upstream) in [
            ("/flags/definitions", Upstream::Ingest),
            ("/api/feature_flag/local_evaluation/", Upstream::Api),
            (
                "/api/projects/3/feature_flags/local_evaluation",
                Upstream::Api,
            ),
            (
                "/api/projects/3/feature_flags/my-flag/remote_config/",
                Upstream::Api,
            ),
        ] {
            let call = private(&table, &Method::GET, &segments(path).unwrap());
            assert_eq!(call.credential, Credential::SecretFirst, "{path}");
            assert_eq!(call.upstream, upstream, "{path}");
            assert_eq!(call.requirement.unwrap().to_string(), "feature_flag:read");
        }
        let write = private(
            &table,
            &Method::POST,
            &segments("/flags/definitions").unwrap(),
        );
        assert!(write.requirement.is_none());
        let flags = private(
            &table,
            &Method::GET,
            &segments("/api/projects/3/feature_flags/").unwrap(),
        );
        assert_eq!(flags.credential, Credential::Personal);
        assert_eq!(flags.requirement.unwrap().to_string(), "feature_flag:read");
    }
}
