//! Reading the scope of every operation from PostHog's OpenAPI schema (what an instance serves
//! at `/api/schema/?format=json`), to refresh the scope table from a user's own instance.
//!
//! PostHog's schema generator asks the permission class itself for each operation's scopes, and
//! writes them as the operation's security requirement:
//! `"security": [{"PersonalAPIKeyAuth": ["feature_flag:read"]}]`. An operation whose
//! `PersonalAPIKeyAuth` list is empty, or whose security names other schemes only, does not
//! take personal API keys. An operation without `security` falls back to the document's
//! top-level `security`, as OpenAPI says.

use serde_json::Value;

use crate::table::{OperationRow, TABLE_FORMAT, TableFile};

/// The OpenAPI security scheme PostHog lists personal-API-key scopes under.
pub const PERSONAL_KEY_SCHEME: &str = "PersonalAPIKeyAuth";

/// The operation methods an OpenAPI path item may hold that the table keeps (`head` and
/// `trace` are left out: PostHog answers `HEAD` as `GET`, and the table does not hold `TRACE`).
const OPERATION_METHODS: [&str; 6] = ["get", "put", "post", "delete", "options", "patch"];

/// A schema the importer cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Not JSON.
    #[error("the schema is not JSON (PostHog serves JSON at /api/schema/?format=json)")]
    Json(#[source] serde_json::Error),
    /// JSON, but no `paths` object.
    #[error("the schema has no `paths` object: it is not an OpenAPI document")]
    NoPaths,
    /// No operation lists personal-API-key scopes.
    #[error(
        "no operation of the schema lists {PERSONAL_KEY_SCHEME} scopes: it is not PostHog's schema"
    )]
    NoPersonalKeyScopes,
}

/// The table rows of a PostHog OpenAPI schema (JSON), one per operation, labelled with
/// `source` and `date` (`YYYY-MM-DD`).
///
/// ```
/// let schema = br#"{"openapi":"3.0.3","info":{"title":"PostHog API","version":"1.0.0"},
///   "paths":{"/api/projects/{project_id}/feature_flags/":{"get":{
///     "security":[{"PersonalAPIKeyAuth":["feature_flag:read"]}]}}}}"#;
/// let file = hogguard_proxy::import_openapi(schema, "my instance", "2026-12-04")?;
/// assert_eq!(file.operation[0].scopes, ["feature_flag:read"]);
/// let table = hogguard_proxy::ScopeTable::compile(&file)?;
/// assert_eq!(table.endpoints(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn import_openapi(schema: &[u8], source: &str, date: &str) -> Result<TableFile, ImportError> {
    let document: Value = serde_json::from_slice(schema).map_err(ImportError::Json)?;
    let paths = document
        .get("paths")
        .and_then(Value::as_object)
        .ok_or(ImportError::NoPaths)?;
    let document_security = document.get("security");
    let mut operations = Vec::new();
    let mut any_scopes = false;
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in OPERATION_METHODS {
            let Some(operation) = item.get(method).and_then(Value::as_object) else {
                continue;
            };
            let Some(security) = operation
                .get("security")
                .or(document_security)
                .and_then(Value::as_array)
            else {
                // No requirement stated anywhere: leave the operation unknown, so refused.
                continue;
            };
            let scopes = personal_key_scopes(security);
            any_scopes |= !scopes.is_empty();
            operations.push(OperationRow {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                scopes,
            });
        }
    }
    if !any_scopes {
        return Err(ImportError::NoPersonalKeyScopes);
    }
    operations.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    let title = document
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("OpenAPI schema");
    let version = document
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("?");
    Ok(TableFile {
        format: TABLE_FORMAT,
        source: format!("{title} {version}, {source}"),
        date: date.to_owned(),
        viewset: Vec::new(),
        operation: operations,
    })
}

/// The scopes of the first `PersonalAPIKeyAuth` requirement in `security` (strings only);
/// none when personal keys are not among the alternatives.
fn personal_key_scopes(security: &[Value]) -> Vec<String> {
    security
        .iter()
        .find_map(|requirement| requirement.get(PERSONAL_KEY_SCHEME)?.as_array())
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::segments;
    use crate::table::{Lookup, ScopeTable};
    use http::Method;

    /// A schema shaped like PostHog's, built here: a few operations with personal-key scopes,
    /// one without personal-key access, one relying on the document-level requirement, and
    /// noise the importer must skip.
    fn fixture() -> Vec<u8> {
        serde_json::json!({
            "openapi": "3.0.3",
            "info": {"title": "PostHog API", "version": "1.0.0"},
            "security": [{"PersonalAPIKeyAuth": ["project:read"]}],
            "paths": {
                "/api/projects/{project_id}/feature_flags/": {
                    "get": {"operationId": "feature_flags_list", "security": [{"PersonalAPIKeyAuth": ["feature_flag:read"]}]},
                    "post": {"operationId": "feature_flags_create", "security": [{"PersonalAPIKeyAuth": ["feature_flag:write"]}]},
                    "parameters": [{"name": "project_id", "in": "path"}]
                },
                "/api/projects/{project_id}/feature_flags/{id}/": {
                    "delete": {"security": [{"PersonalAPIKeyAuth": ["feature_flag:write"]}]},
                    "head": {"security": [{"PersonalAPIKeyAuth": ["feature_flag:read"]}]}
                },
                "/api/projects/{project_id}/feature_flags/{id}/enrich_usage_dashboard/": {
                    "post": {"security": [{"cookieAuth": []}]}
                },
                "/api/projects/{project_id}/cohorts/{id}/persons/": {
                    "get": {"security": [{"cookieAuth": []}, {"PersonalAPIKeyAuth": ["cohort:read", "person:read"]}]}
                },
                "/api/projects/": {"get": {}},
                "/api/odd/": "not an object",
            }
        })
        .to_string()
        .into_bytes()
    }

    fn lookup(table: &ScopeTable, method: Method, path: &str) -> Option<String> {
        match table.lookup(&method, &segments(path).unwrap()) {
            Lookup::Known { requirement, .. } => Some(requirement.to_string()),
            Lookup::Unknown => None,
        }
    }

    #[test]
    fn imports_every_operation_with_its_scopes() {
        let file = import_openapi(&fixture(), "schema.json", "2026-12-04").unwrap();
        assert_eq!(file.source, "PostHog API 1.0.0, schema.json");
        assert_eq!(file.date, "2026-12-04");
        assert_eq!(file.operation.len(), 6, "{:#?}", file.operation);
        // Written and read back, the table answers as the schema says.
        let table = ScopeTable::parse(&file.to_toml()).unwrap();
        let flags = "/api/projects/7/feature_flags/";
        assert_eq!(
            lookup(&table, Method::GET, flags).as_deref(),
            Some("feature_flag:read")
        );
        assert_eq!(
            lookup(&table, Method::POST, flags).as_deref(),
            Some("feature_flag:write")
        );
        assert_eq!(
            lookup(&table, Method::DELETE, "/api/projects/7/feature_flags/3").as_deref(),
            Some("feature_flag:write")
        );
        assert_eq!(
            lookup(
                &table,
                Method::POST,
                "/api/projects/7/feature_flags/3/enrich_usage_dashboard"
            )
            .as_deref(),
            Some("none (personal API keys not accepted)")
        );
        assert_eq!(
            lookup(&table, Method::GET, "/api/projects/7/cohorts/1/persons").as_deref(),
            Some("cohort:read person:read")
        );
        // The document-level requirement applies where an operation states none.
        assert_eq!(
            lookup(&table, Method::GET, "/api/projects/").as_deref(),
            Some("project:read")
        );
        // HEAD is answered as GET, which the schema does not list here.
        assert_eq!(
            lookup(&table, Method::HEAD, "/api/projects/7/feature_flags/3"),
            None
        );
    }

    #[test]
    fn refuses_what_is_not_posthogs_schema() {
        for (schema, expected) in [
            (&b"{not json"[..], "not JSON"),
            (b"{\"openapi\":\"3.0.3\"}", "no `paths`"),
            (
                b"{\"paths\":{\"/x/\":{\"get\":{\"security\":[{\"cookieAuth\":[]}]}}}}",
                "no operation",
            ),
        ] {
            let error = import_openapi(schema, "s", "d").unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
            hogguard_testkit::errors::assert_no_repeated_segment(&error);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            "[a-z/{}_:*]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("paths".to_owned()),
                        Just("get".to_owned()),
                        Just("security".to_owned()),
                        Just(PERSONAL_KEY_SCHEME.to_owned()),
                        "[a-z/{}]{1,8}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_is_imported_or_refused(value in json_value()) {
            let bytes = value.to_string().into_bytes();
            if let Ok(file) = import_openapi(&bytes, "s", "2026-01-01") {
                // What imports either compiles or is refused with a reason, never a panic.
                let _ = ScopeTable::compile(&file);
            }
        }

        #[test]
        fn any_bytes_are_imported_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = import_openapi(&bytes, "s", "d");
        }
    }
}
