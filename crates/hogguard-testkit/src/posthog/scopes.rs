//! PostHog's API scope vocabulary (`posthog/scopes.py`), for validating the scopes of keys
//! created through the stand-in.

/// `APIScopeObject`, the recent 97-object list.
const API_SCOPE_OBJECTS: &[&str] = &[
    "action",
    "access_control",
    "account",
    "activity_log",
    "agents",
    "agent_approvals",
    "alert",
    "annotation",
    "approvals",
    "batch_export",
    "batch_import",
    "business_knowledge",
    "clickhouse_test_cluster_perf",
    "cohort",
    "comment",
    "conversation",
    "customer_analytics",
    "customer_journey",
    "customer_profile_config",
    "dashboard",
    "event_filter",
    "dashboard_template",
    "dataset",
    "early_access_feature",
    "endpoint",
    "engineering_analytics",
    "error_tracking",
    "evaluation",
    "element",
    "event_definition",
    "experiment",
    "experiment_holdout",
    "experiment_saved_metric",
    "export",
    "external_data_schema",
    "external_data_source",
    "feature_flag",
    "file_system",
    "file_system_shortcut",
    "group",
    "health_issue",
    "heatmap",
    "hog_flow",
    "hog_function",
    "ingestion_warning",
    "insight",
    "insight_variable",
    "integration",
    "legal_document",
    "link",
    "live_debugger",
    "llm_analytics",
    "llm_gateway",
    "llm_prompt",
    "llm_provider_key",
    "llm_skill",
    "logs",
    "marketing_analytics",
    "mcp_analytics",
    "metrics",
    "notebook",
    "organization",
    "organization_integration",
    "organization_member",
    "person",
    "plugin",
    "product_enablement",
    "product_tour",
    "project",
    "property_definition",
    "query",
    "query_performance",
    "replay_scanner",
    "revenue_analytics",
    "session_recording",
    "session_recording_playlist",
    "sharing_configuration",
    "signal_scout",
    "signal_scout_internal",
    "signal_scout_report",
    "streamlit_app",
    "subscription",
    "survey",
    "tagger",
    "ticket",
    "task",
    "tracing",
    "field_note",
    "uploaded_media",
    "usage_metric",
    "user",
    "user_interview",
    "vision_action",
    "visual_review",
    "warehouse_objects",
    "warehouse_table",
    "warehouse_view",
    "web_analytics",
    "webhook",
    "wizard_session",
];

/// `INTERNAL_API_SCOPE_OBJECTS`: minted programmatically, never grantable.
const INTERNAL_API_SCOPE_OBJECTS: &[&str] = &[
    "clickhouse_test_cluster_perf",
    "signal_scout_internal",
    "signal_scout_report",
];

/// `PROJECT_SECRET_API_KEY_ALLOWED_API_SCOPE_ACTION`, sorted as PostHog's error lists it.
pub(crate) const PROJECT_SECRET_KEY_SCOPES: &[&str] = &["endpoint:read", "feature_flag:read"];

/// The `object:action` parts of `scope` when it names a known object and `read`/`write`.
fn split(scope: &str) -> Option<(&str, &str)> {
    let (object, action) = scope.split_once(':')?;
    (API_SCOPE_OBJECTS.contains(&object) && matches!(action, "read" | "write"))
        .then_some((object, action))
}

/// `PersonalAPIKeySerializer.validate_scopes`: `*` or a known `object:action`.
pub(crate) fn is_valid_personal_key_scope(scope: &str) -> bool {
    scope == "*" || split(scope).is_some()
}

/// `ProjectSecretAPIKeySerializer.validate_scopes` for one scope: the validation message, if
/// the scope is refused.
pub(crate) fn project_secret_key_scope_error(scope: &str) -> Option<String> {
    if scope == "*" {
        return Some(
            "Wildcard scope '*' is not allowed for project API keys. Please specify explicit scopes."
                .to_owned(),
        );
    }
    match split(scope) {
        Some((object, _)) if !INTERNAL_API_SCOPE_OBJECTS.contains(&object) => {
            if PROJECT_SECRET_KEY_SCOPES.contains(&scope) {
                None
            } else {
                Some(format!(
                    "Scope '{scope}' can not be assigned to a project secret API key. Allowed scopes: {}",
                    PROJECT_SECRET_KEY_SCOPES.join(", ")
                ))
            }
        }
        _ => Some(format!("Invalid scope: {scope}")),
    }
}

/// `APIScopePermission`'s scope test: `*`, the scope itself, or `X:write` for `X:read`.
pub(crate) fn grants(scopes: &[String], required: &str) -> bool {
    if scopes.iter().any(|scope| scope == "*") {
        return true;
    }
    let write = required
        .strip_suffix(":read")
        .map(|object| format!("{object}:write"));
    scopes
        .iter()
        .any(|scope| scope == required || Some(scope) == write.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read() {
        let scopes = vec!["project:write".to_owned()];
        assert!(grants(&scopes, "project:read"));
        assert!(grants(&scopes, "project:write"));
        assert!(!grants(&scopes, "user:read"));
        assert!(!grants(&["project:read".to_owned()], "project:write"));
    }

    #[test]
    fn validates_project_secret_key_scopes_like_posthog() {
        assert_eq!(project_secret_key_scope_error("feature_flag:read"), None);
        assert_eq!(
            project_secret_key_scope_error("insight:read").unwrap(),
            "Scope 'insight:read' can not be assigned to a project secret API key. Allowed scopes: endpoint:read, feature_flag:read"
        );
        assert_eq!(
            project_secret_key_scope_error("bogus").unwrap(),
            "Invalid scope: bogus"
        );
        assert_eq!(
            project_secret_key_scope_error("signal_scout_report:read").unwrap(),
            "Invalid scope: signal_scout_report:read"
        );
        assert!(is_valid_personal_key_scope("user:read"));
        assert!(!is_valid_personal_key_scope("invalid"));
    }
}
