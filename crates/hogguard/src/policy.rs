//! Least-privilege rules for PostHog keys, as `hogguard keys` and `hogguard check` judge them.

/// Whether the key scope `scope` is covered by the `allowed` patterns: `*` covers everything,
/// `*:read` any read scope, `*:write` any scope, `object:write` both actions on the object and
/// `object:read` only reading it. A key's own `*` is covered only by `*`.
pub(crate) fn scope_allowed(scope: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|pattern| {
        if pattern == "*" {
            return true;
        }
        let Some((object, action)) = scope.split_once(':') else {
            return false;
        };
        let Some((allowed_object, allowed_action)) = pattern.split_once(':') else {
            return false;
        };
        let object_ok = allowed_object == "*" || allowed_object == object;
        let action_ok = allowed_action == action || (allowed_action == "write" && action == "read");
        object_ok && action_ok
    })
}

/// The scopes of `scopes` that `allowed` does not cover.
pub(crate) fn excess_scopes<'s>(scopes: &'s [String], allowed: &[String]) -> Vec<&'s str> {
    scopes
        .iter()
        .filter(|scope| !scope_allowed(scope, allowed))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn patterns_cover_what_they_say() {
        let read_only = allowed(&["*:read"]);
        assert!(scope_allowed("insight:read", &read_only));
        assert!(!scope_allowed("insight:write", &read_only));
        assert!(!scope_allowed("*", &read_only));
        let flags = allowed(&["feature_flag:write", "insight:read"]);
        assert!(scope_allowed("feature_flag:read", &flags));
        assert!(scope_allowed("feature_flag:write", &flags));
        assert!(!scope_allowed("insight:write", &flags));
        assert!(!scope_allowed("person:read", &flags));
        assert!(scope_allowed("*", &allowed(&["*"])));
        assert!(scope_allowed("person:write", &allowed(&["*:write"])));
        let scopes = allowed(&["insight:read", "person:write", "*"]);
        assert_eq!(excess_scopes(&scopes, &flags), vec!["person:write", "*"]);
    }
}
