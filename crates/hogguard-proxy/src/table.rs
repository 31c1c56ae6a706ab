//! The scope table: which scope each PostHog API endpoint requires of a personal API key.
//!
//! It is data, kept in a TOML file with its source and date. Two kinds of rows describe it:
//!
//! - `[[viewset]]`: a Django REST framework viewset as PostHog registers it, and the scope its
//!   `APIScopePermission` derives (`posthog/permissions.py`): `required_scopes` of an action
//!   when set, else `<object>:write` for the actions in the write list (by default `create`,
//!   `update`, `partial_update`, `patch`, `destroy`), `<object>:read` for those in the read
//!   list (by default `list`, `retrieve`) and for `OPTIONS`, and no personal-key access at all
//!   for any other action or for an `INTERNAL` object. A viewset's `read` and `write` lists
//!   replace the defaults, as `scope_object_read_actions` and `scope_object_write_actions`
//!   do in PostHog.
//! - `[[operation]]`: one method and path with its scopes, as PostHog's OpenAPI schema lists
//!   them per operation; an empty list means personal keys are not accepted. This is what
//!   [`import_openapi`](crate::import_openapi) writes.
//!
//! ```toml
//! format = 1
//! source = "PostHog/posthog: posthog/api/__init__.py and each viewset's scope_object"
//! date = "2026-11-30"
//!
//! [[viewset]]
//! paths = ["/api/projects/{project_id}/annotations"]
//! object = "annotation"
//!
//! [[operation]]
//! method = "GET"
//! path = "/api/users/{uuid}/"
//! scopes = ["user:read"]
//! ```
//!
//! Paths are matched segment by segment after percent-decoding ([`crate::path`]); a `{name}`
//! segment matches any one segment, and a literal segment is preferred over a parameter at the
//! first place they differ, which is the order PostHog's router tries a viewset's list-level
//! actions before its detail routes in.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::Method;
use serde::{Deserialize, Serialize};

use hogguard_posthog::{Access, InvalidScope, Scope};

/// The table shipped with hogguard, built from PostHog's source (see its `source` and `date`).
pub const BUILT_IN_TABLE: &str = include_str!("../data/posthog-scopes.toml");

/// The version of the file format this crate reads and writes.
pub const TABLE_FORMAT: u32 = 1;

/// A scope table file as written: rows, not yet checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    /// Always [`TABLE_FORMAT`].
    pub format: u32,
    /// Where the rows come from.
    pub source: String,
    /// When they were read from there (`YYYY-MM-DD`).
    pub date: String,
    /// Viewsets, whose scopes are derived as PostHog derives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub viewset: Vec<ViewsetRow>,
    /// Single operations with their scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operation: Vec<OperationRow>,
}

/// `[[viewset]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewsetRow {
    /// Where the viewset is registered, without a trailing slash
    /// (`/api/projects/{project_id}/feature_flags`).
    pub paths: Vec<String>,
    /// Its `scope_object`; `INTERNAL` for viewsets personal keys may not use.
    pub object: String,
    /// `scope_object_read_actions`, when the viewset replaces the default `list, retrieve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Vec<String>>,
    /// `scope_object_write_actions`, when the viewset replaces the default
    /// `create, update, partial_update, patch, destroy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<Vec<String>>,
    /// The viewset's extra actions (`@action`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRow>,
    /// Anything a reader should know about the row (its source version, a doubt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One `@action` of a viewset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRow {
    /// The action's name (the method name in PostHog).
    pub name: String,
    /// Its HTTP methods.
    pub methods: Vec<String>,
    /// Its `url_path` (the name when not set); `{name}` for a path parameter.
    pub path: String,
    /// Whether it acts on one object (`/{id}/<path>/`) or on the list (`/<path>/`).
    pub detail: bool,
    /// Its `required_scopes`, when set; otherwise the scope is derived from the lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// `[[operation]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRow {
    /// The HTTP method.
    pub method: String,
    /// The path, `{name}` for each parameter.
    pub path: String,
    /// Every scope the operation requires; empty when personal keys cannot call it.
    pub scopes: Vec<String>,
}

/// What an endpoint asks of a personal API key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// Each of these scopes.
    Scopes(Vec<Scope>),
    /// PostHog does not let personal API keys call it at all (it answers `This action does
    /// not support Personal API Key access`, whatever the key's scopes).
    NoPersonalKeys,
}

impl Requirement {
    /// Both requirements at once: the union of scopes, and no access when either has none.
    fn and(self, other: Requirement) -> Requirement {
        match (self, other) {
            (Requirement::Scopes(mut mine), Requirement::Scopes(theirs)) => {
                for scope in theirs {
                    if !mine.contains(&scope) {
                        mine.push(scope);
                    }
                }
                Requirement::Scopes(mine)
            }
            _ => Requirement::NoPersonalKeys,
        }
    }
}

impl fmt::Display for Requirement {
    /// The scopes separated by spaces, or `none (personal API keys not accepted)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Scopes(scopes) => {
                for (index, scope) in scopes.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{scope}")?;
                }
                Ok(())
            }
            Requirement::NoPersonalKeys => f.write_str("none (personal API keys not accepted)"),
        }
    }
}

/// A table file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The text is not a table file.
    #[error("not a scope table")]
    Syntax(#[source] toml::de::Error),
    /// Written by a newer hogguard.
    #[error(
        "scope table format {found} is not supported (this hogguard reads format {TABLE_FORMAT})"
    )]
    Format {
        /// The format the file declares.
        found: u32,
    },
    /// A row names an unusable path.
    #[error("`{path}` is not a path of the form /api/… with {{name}} parameters")]
    Path {
        /// The path as written.
        path: String,
    },
    /// A row names an unusable method.
    #[error("`{method}` is not an HTTP method the table can hold")]
    Method {
        /// The method as written.
        method: String,
    },
    /// A row names an unusable scope.
    #[error("a row of {path} has an unusable scope")]
    Scope {
        /// The path of the row.
        path: String,
        /// What is wrong with it.
        #[source]
        source: InvalidScope,
    },
    /// An `INTERNAL` or empty scope object with actions that still need one.
    #[error("the viewset at {path} has no scope object")]
    Object {
        /// The first path of the viewset.
        path: String,
    },
}

/// The methods a table row may name; `HEAD` is answered as `GET` is.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// A compiled table: a trie of path segments with each endpoint's requirement per method.
#[derive(Clone, Debug)]
pub struct ScopeTable {
    root: Node,
    source: String,
    date: String,
    endpoints: usize,
}

#[derive(Clone, Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    parameter: Option<Box<Node>>,
    endpoint: Option<Endpoint>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    /// The path as the table writes it (the first row that named it).
    template: Arc<str>,
    /// Requirement per method (at most the six of [`METHODS`]).
    methods: Vec<(Method, Requirement)>,
}

/// What the table says of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'t> {
    /// A known endpoint and method.
    Known {
        /// The path as the table writes it (`/api/projects/{project_id}/feature_flags/{id}`).
        template: &'t str,
        /// What the endpoint requires.
        requirement: &'t Requirement,
    },
    /// No row matches the path and method.
    Unknown,
}

impl ScopeTable {
    /// The table shipped with hogguard.
    ///
    /// # Panics
    ///
    /// Never for the shipped file (a test loads it); a broken one would be a build defect.
    pub fn built_in() -> ScopeTable {
        ScopeTable::parse(BUILT_IN_TABLE).expect("the built-in scope table is valid")
    }

    /// Parses and compiles a table file's text.
    pub fn parse(text: &str) -> Result<ScopeTable, TableError> {
        let file: TableFile = toml::from_str(text).map_err(TableError::Syntax)?;
        ScopeTable::compile(&file)
    }

    /// Compiles rows into a table.
    pub fn compile(file: &TableFile) -> Result<ScopeTable, TableError> {
        if file.format != TABLE_FORMAT {
            return Err(TableError::Format { found: file.format });
        }
        let mut table = ScopeTable {
            root: Node::default(),
            source: file.source.clone(),
            date: file.date.clone(),
            endpoints: 0,
        };
        for viewset in &file.viewset {
            for (method, path, requirement) in expand_viewset(viewset)? {
                table.insert(&method, &path, requirement)?;
            }
        }
        for operation in &file.operation {
            let method = parse_method(&operation.method)?;
            let requirement = if operation.scopes.is_empty() {
                Requirement::NoPersonalKeys
            } else {
                Requirement::Scopes(parse_scopes(&operation.scopes, &operation.path)?)
            };
            table.insert(&method, &operation.path, requirement)?;
        }
        Ok(table)
    }

    /// Where the table's rows come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// When they were read.
    pub fn date(&self) -> &str {
        &self.date
    }

    /// How many distinct endpoint paths it knows.
    pub fn endpoints(&self) -> usize {
        self.endpoints
    }

    /// What the endpoint at `segments` (decoded, from [`crate::path::segments`]) requires
    /// for `method`.
    pub fn lookup(&self, method: &Method, segments: &[String]) -> Lookup<'_> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match find(&self.root, segments) {
            Some(endpoint) => match endpoint.methods.iter().find(|(known, _)| known == method) {
                Some((_, requirement)) => Lookup::Known {
                    template: &endpoint.template,
                    requirement,
                },
                None => Lookup::Unknown,
            },
            None => Lookup::Unknown,
        }
    }

    fn insert(
        &mut self,
        method: &Method,
        path: &str,
        requirement: Requirement,
    ) -> Result<(), TableError> {
        let template = path.trim_end_matches('/');
        let segments = template_segments(template)?;
        let mut node = &mut self.root;
        for segment in segments {
            node = match segment {
                TemplateSegment::Parameter => node.parameter.get_or_insert_with(Box::default),
                TemplateSegment::Literal(literal) => {
                    node.literals.entry(literal.to_owned()).or_default()
                }
            };
        }
        let endpoint = node.endpoint.get_or_insert_with(|| {
            self.endpoints += 1;
            Endpoint {
                template: Arc::from(template),
                methods: Vec::new(),
            }
        });
        match endpoint
            .methods
            .iter_mut()
            .find(|(known, _)| known == method)
        {
            // Two rows for one endpoint and method: the call must satisfy both.
            Some((_, existing)) => {
                *existing =
                    std::mem::replace(existing, Requirement::NoPersonalKeys).and(requirement);
            }
            None => endpoint.methods.push((method.clone(), requirement)),
        }
        Ok(())
    }
}

/// Literal-first depth-first search.
fn find<'n>(node: &'n Node, segments: &[String]) -> Option<&'n Endpoint> {
    let Some((first, rest)) = segments.split_first() else {
        return node.endpoint.as_ref();
    };
    if let Some(child) = node.literals.get(first)
        && let Some(found) = find(child, rest)
    {
        return Some(found);
    }
    find(node.parameter.as_deref()?, rest)
}

enum TemplateSegment<'a> {
    Literal(&'a str),
    Parameter,
}

fn template_segments(template: &str) -> Result<Vec<TemplateSegment<'_>>, TableError> {
    let invalid = || TableError::Path {
        path: template.to_owned(),
    };
    let rest = template.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() {
        return Err(invalid());
    }
    rest.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2 {
                Ok(TemplateSegment::Parameter)
            } else if segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(['{', '}', '%', '?', '#'])
                || segment.chars().any(char::is_control)
            {
                Err(invalid())
            } else {
                Ok(TemplateSegment::Literal(segment))
            }
        })
        .collect()
}

fn parse_method(text: &str) -> Result<Method, TableError> {
    METHODS
        .iter()
        .find(|method| method.as_str().eq_ignore_ascii_case(text))
        .cloned()
        .ok_or_else(|| TableError::Method {
            method: text.to_owned(),
        })
}

fn parse_scopes(texts: &[String], path: &str) -> Result<Vec<Scope>, TableError> {
    texts
        .iter()
        .map(|text| {
            text.parse().map_err(|source| TableError::Scope {
                path: path.to_owned(),
                source,
            })
        })
        .collect()
}

const DEFAULT_READ: [&str; 2] = ["list", "retrieve"];
const DEFAULT_WRITE: [&str; 5] = ["create", "update", "partial_update", "patch", "destroy"];

/// Every (method, path, requirement) a viewset row stands for.
fn expand_viewset(row: &ViewsetRow) -> Result<Vec<(Method, String, Requirement)>, TableError> {
    let first_path = || row.paths.first().cloned().unwrap_or_default();
    let read: Vec<&str> = match &row.read {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_READ.to_vec(),
    };
    let write: Vec<&str> = match &row.write {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_WRITE.to_vec(),
    };
    let internal = row.object == "INTERNAL";
    if !internal && row.object.is_empty() {
        return Err(TableError::Object { path: first_path() });
    }
    let derive = |action: &str, method: &Method| -> Result<Requirement, TableError> {
        if internal {
            return Ok(Requirement::NoPersonalKeys);
        }
        let access = if write.contains(&action) {
            Access::Write
        } else if read.contains(&action) || method == Method::OPTIONS {
            Access::Read
        } else {
            return Ok(Requirement::NoPersonalKeys);
        };
        let scope = format!("{}:{}", row.object, access.as_str());
        let scope = scope.parse().map_err(|source| TableError::Scope {
            path: first_path(),
            source,
        })?;
        Ok(Requirement::Scopes(vec![scope]))
    };
    // DRF's router: the list route, then the detail route, each with its method → action map.
    let list_actions = [
        (Method::GET, "list"),
        (Method::POST, "create"),
        (Method::PATCH, "patch"),
        (Method::OPTIONS, "metadata"),
    ];
    let detail_actions = [
        (Method::GET, "retrieve"),
        (Method::PUT, "update"),
        (Method::PATCH, "partial_update"),
        (Method::DELETE, "destroy"),
        (Method::OPTIONS, "metadata"),
    ];
    let mut rows = Vec::new();
    for prefix in &row.paths {
        let prefix = prefix.trim_end_matches('/');
        let detail = format!("{prefix}/{{id}}");
        for (method, action) in &list_actions {
            rows.push((method.clone(), prefix.to_owned(), derive(action, method)?));
        }
        for (method, action) in &detail_actions {
            rows.push((method.clone(), detail.clone(), derive(action, method)?));
        }
        for action in &row.actions {
            let path = if action.detail {
                format!("{detail}/{}", action.path)
            } else {
                format!("{prefix}/{}", action.path)
            };
            for method in &action.methods {
                let method = parse_method(method)?;
                let requirement = match &action.scopes {
                    _ if internal => Requirement::NoPersonalKeys,
                    Some(scopes) if scopes.is_empty() => Requirement::NoPersonalKeys,
                    Some(scopes) => Requirement::Scopes(parse_scopes(scopes, &path)?),
                    None => derive(&action.name, &method)?,
                };
                rows.push((method, path.clone(), requirement));
            }
        }
    }
    Ok(rows)
}

impl TableFile {
    /// The file's text, as [`ScopeTable::parse`] reads it.
    pub fn to_toml(&self) -> String {
        // Every field is a string, a number or a list of them: serialising cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::segments;

    fn requirement(table: &ScopeTable, method: Method, path: &str) -> Option<String> {
        match table.lookup(&method, &segments(path).unwrap()) {
            Lookup::Known { requirement, .. } => Some(requirement.to_string()),
            Lookup::Unknown => None,
        }
    }

    fn table(text: &str) -> ScopeTable {
        ScopeTable::parse(&format!(
            "format = 1\nsource = \"test\"\ndate = \"2026-01-01\"\n{text}"
        ))
        .unwrap()
    }

    #[test]
    fn viewsets_derive_scopes_as_posthog_does() {
        let table = table(
            r#"
            [[viewset]]
            paths = ["/api/projects/{project_id}/feature_flags"]
            object = "feature_flag"
            write = ["create", "update", "partial_update", "patch", "destroy", "bulk_update_tags"]
            actions = [
              { name = "matching_ids", methods = ["GET"], path = "matching_ids", detail = false, scopes = ["feature_flag:read"] },
              { name = "bulk_update_tags", methods = ["POST"], path = "bulk_update_tags", detail = false },
              { name = "dashboard", methods = ["POST"], path = "dashboard", detail = true },
              { name = "activity", methods = ["GET"], path = "activity", detail = true, scopes = ["activity_log:read"] },
            ]
            "#,
        );
        let flags = "/api/projects/1/feature_flags";
        let read = Some("feature_flag:read".to_owned());
        let write = Some("feature_flag:write".to_owned());
        assert_eq!(requirement(&table, Method::GET, flags), read);
        assert_eq!(
            requirement(&table, Method::HEAD, &format!("{flags}/")),
            read
        );
        assert_eq!(requirement(&table, Method::OPTIONS, flags), read);
        assert_eq!(requirement(&table, Method::POST, flags), write);
        assert_eq!(requirement(&table, Method::PATCH, flags), write);
        assert_eq!(
            requirement(&table, Method::GET, &format!("{flags}/7")),
            read
        );
        assert_eq!(
            requirement(&table, Method::DELETE, &format!("{flags}/7/")),
            write
        );
        // A list-level action wins over the detail route, as in DRF's router.
        assert_eq!(
            requirement(&table, Method::GET, &format!("{flags}/matching_ids")),
            read
        );
        assert_eq!(
            requirement(&table, Method::POST, &format!("{flags}/bulk_update_tags")),
            write
        );
        assert_eq!(
            requirement(&table, Method::POST, &format!("{flags}/7/dashboard")).as_deref(),
            Some("none (personal API keys not accepted)")
        );
        assert_eq!(
            requirement(&table, Method::GET, &format!("{flags}/7/activity")).as_deref(),
            Some("activity_log:read")
        );
        // Methods and paths the table does not know.
        assert_eq!(requirement(&table, Method::PUT, flags), None);
        assert_eq!(
            requirement(&table, Method::POST, &format!("{flags}/7/enable")),
            None
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/projects/1/insights"),
            None
        );
    }

    #[test]
    fn replaced_lists_are_not_added_to() {
        let table = table(
            r#"
            [[viewset]]
            paths = ["/api/environments/{environment_id}/query"]
            object = "query"
            read = ["retrieve", "create", "list", "destroy"]
            write = []
            "#,
        );
        let query = "/api/environments/2/query";
        assert_eq!(
            requirement(&table, Method::POST, query).as_deref(),
            Some("query:read")
        );
        assert_eq!(
            requirement(&table, Method::DELETE, &format!("{query}/abc")).as_deref(),
            Some("query:read")
        );
        assert_eq!(
            requirement(&table, Method::PUT, &format!("{query}/abc")).as_deref(),
            Some("none (personal API keys not accepted)")
        );
    }

    #[test]
    fn internal_viewsets_and_empty_operations_refuse_keys() {
        let table = table(
            r#"
            [[viewset]]
            paths = ["/api/projects/{project_id}/tags"]
            object = "INTERNAL"
            actions = [{ name = "usage", methods = ["GET"], path = "usage", detail = false, scopes = ["tag:read"] }]

            [[operation]]
            method = "get"
            path = "/api/projects/{project_id}/search/"
            scopes = []

            [[operation]]
            method = "GET"
            path = "/api/projects/{project_id}/cohorts/{id}/persons/"
            scopes = ["cohort:read", "person:read"]
            "#,
        );
        let none = Some("none (personal API keys not accepted)".to_owned());
        assert_eq!(
            requirement(&table, Method::GET, "/api/projects/1/tags"),
            none
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/projects/1/tags/usage"),
            none
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/projects/1/search"),
            none
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/projects/1/cohorts/3/persons/").as_deref(),
            Some("cohort:read person:read")
        );
    }

    #[test]
    fn two_rows_for_one_operation_require_both() {
        let table = table(
            r#"
            [[operation]]
            method = "GET"
            path = "/api/x/{id}/"
            scopes = ["a:read"]
            [[operation]]
            method = "GET"
            path = "/api/x/{pk}"
            scopes = ["b:read"]
            "#,
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/x/1").as_deref(),
            Some("a:read b:read")
        );
        assert_eq!(table.endpoints(), 1);
    }

    #[test]
    fn bad_rows_are_refused_with_their_reason() {
        let base = "format = 1\nsource = \"t\"\ndate = \"d\"\n";
        for (rows, expected) in [
            (
                "[[operation]]\nmethod = \"GET\"\npath = \"api/x\"\nscopes = []\n",
                "is not a path",
            ),
            (
                "[[operation]]\nmethod = \"GET\"\npath = \"/api/../x\"\nscopes = []\n",
                "is not a path",
            ),
            (
                "[[operation]]\nmethod = \"TRACE\"\npath = \"/api/x\"\nscopes = []\n",
                "not an HTTP method",
            ),
            (
                "[[operation]]\nmethod = \"GET\"\npath = \"/api/x\"\nscopes = [\"x\"]\n",
                "unusable scope",
            ),
            (
                "[[viewset]]\npaths = [\"/api/x\"]\nobject = \"\"\n",
                "no scope object",
            ),
            (
                "[[viewset]]\npaths = [\"/api/x\"]\nobject = \"Bad Object\"\n",
                "unusable scope",
            ),
            (
                "[[viewset]]\npaths = [\"/api/x\"]\nobjekt = \"x\"\n",
                "not a scope table",
            ),
        ] {
            let error = ScopeTable::parse(&format!("{base}{rows}")).unwrap_err();
            assert!(error.to_string().contains(expected), "{error} for {rows}");
            hogguard_testkit::errors::assert_no_repeated_segment(&error);
        }
        let error = ScopeTable::parse("format = 2\nsource = \"t\"\ndate = \"d\"\n").unwrap_err();
        assert!(matches!(error, TableError::Format { found: 2 }), "{error}");
    }

    #[test]
    fn the_built_in_table_loads_and_knows_the_sdk_endpoints() {
        let table = ScopeTable::built_in();
        assert!(table.endpoints() > 100, "{}", table.endpoints());
        assert!(table.source().contains("PostHog/posthog"));
        for (method, path, expected) in [
            (
                Method::GET,
                "/api/projects/1/feature_flags/",
                "feature_flag:read",
            ),
            (
                Method::POST,
                "/api/projects/1/feature_flags/",
                "feature_flag:write",
            ),
            (
                Method::PATCH,
                "/api/projects/1/feature_flags/3/",
                "feature_flag:write",
            ),
            (Method::GET, "/api/projects/1/insights/", "insight:read"),
            (
                Method::GET,
                "/api/environments/1/insights/abc/",
                "insight:read",
            ),
            (
                Method::POST,
                "/api/projects/1/annotations/",
                "annotation:write",
            ),
            (Method::POST, "/api/projects/1/query/", "query:read"),
            (Method::GET, "/api/users/@me/", "user:read"),
            (
                Method::GET,
                "/api/projects/1/activity_log/",
                "activity_log:read",
            ),
            (
                Method::GET,
                "/api/projects/1/feature_flags/3/activity/",
                "activity_log:read",
            ),
        ] {
            assert_eq!(
                requirement(&table, method.clone(), path).as_deref(),
                Some(expected),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_literal_that_leads_nowhere_falls_back_to_the_parameter() {
        let table = table(
            r#"
            [[operation]]
            method = "GET"
            path = "/api/x/{id}/y"
            scopes = ["a:read"]
            [[operation]]
            method = "GET"
            path = "/api/x/list"
            scopes = ["b:read"]
            "#,
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/x/list/y").as_deref(),
            Some("a:read")
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/x/list").as_deref(),
            Some("b:read")
        );
        assert_eq!(
            requirement(&table, Method::GET, "/api/x/7").as_deref(),
            None
        );
    }

    /// The trie's answer, found the slow way: among the templates whose segments all match,
    /// the one that is literal where the others are parameters, at the first place they differ.
    fn most_specific<'a>(templates: &'a [Vec<String>], path: &[String]) -> Option<&'a Vec<String>> {
        let matches = |template: &Vec<String>| {
            template.len() == path.len()
                && template
                    .iter()
                    .zip(path)
                    .all(|(t, p)| t.starts_with('{') || t == p)
        };
        templates.iter().filter(|t| matches(t)).max_by(|a, b| {
            let rank =
                |t: &Vec<String>| -> Vec<bool> { t.iter().map(|s| !s.starts_with('{')).collect() };
            rank(a).cmp(&rank(b))
        })
    }

    proptest::proptest! {
        #[test]
        fn lookup_finds_the_most_specific_template(
            templates in proptest::collection::vec(proptest::collection::vec(proptest::prop_oneof!["[ab]", proptest::strategy::Just("{p}".to_owned())], 1..4), 1..8),
            path in proptest::collection::vec("[abc]", 1..4),
        ) {
            let mut templates: Vec<Vec<String>> = templates;
            templates.sort();
            templates.dedup();
            let rows: String = templates
                .iter()
                .enumerate()
                .map(|(i, t)| format!("[[operation]]\nmethod = \"GET\"\npath = \"/{}\"\nscopes = [\"s{i}:read\"]\n", t.join("/")))
                .collect();
            let table = table(&rows);
            let expected = most_specific(&templates, &path).map(|t| {
                let i = templates.iter().position(|x| x == t).unwrap();
                format!("s{i}:read")
            });
            let found = match table.lookup(&Method::GET, &path) {
                Lookup::Known { requirement, .. } => Some(requirement.to_string()),
                Lookup::Unknown => None,
            };
            proptest::prop_assert_eq!(found, expected);
        }

        #[test]
        fn any_table_text_is_compiled_or_refused(text in "(?s).{0,300}") {
            let _ = ScopeTable::parse(&text);
        }

        #[test]
        fn any_path_finds_a_requirement_or_none(path in "/[a-z0-9_{}/@.-]{0,80}") {
            let table = ScopeTable::built_in();
            if let Ok(segments) = segments(&path) {
                let _ = table.lookup(&Method::GET, &segments);
            }
        }
    }
}
