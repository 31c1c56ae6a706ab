//! Least-privilege rules for PostHog keys, as `hogguard keys` and `hogguard check` judge them.

/// The scopes of `scopes` that the allowed patterns `allowed` do not cover (see
/// [`hogguard_posthog::scope_allowed`]).
pub(crate) fn excess_scopes<'s>(scopes: &'s [String], allowed: &[String]) -> Vec<&'s str> {
    scopes
        .iter()
        .filter(|scope| !hogguard_posthog::scope_allowed(scope, allowed))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excess_scopes_keep_their_order() {
        let owned = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let scopes = owned(&["insight:read", "person:write", "*"]);
        let allowed = owned(&["feature_flag:write", "insight:read"]);
        assert_eq!(excess_scopes(&scopes, &allowed), vec!["person:write", "*"]);
    }
}
