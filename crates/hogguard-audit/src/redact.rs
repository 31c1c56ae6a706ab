//! Redaction of every string a caller passes, so no credential reaches the log or PostHog.

use std::borrow::Cow;
use std::sync::Arc;

use hogguard_scan::{ScanOptions, Scanner};
use serde_json::{Map, Value};

use crate::entry::EntryInput;
use crate::error::AuditError;

/// The scanner with the built-in rules.
pub(crate) fn default_scanner() -> Result<Arc<Scanner>, AuditError> {
    Scanner::new(&[], ScanOptions::default())
        .map(Arc::new)
        .map_err(|source| AuditError::ScannerUnavailable { source })
}

/// `input` with every credential in its action, user id, resource and metadata (keys and
/// values, at any depth) replaced by its mask.
pub(crate) fn redact_input(scanner: &Scanner, input: EntryInput) -> EntryInput {
    EntryInput {
        action: redact_string(scanner, input.action),
        user_id: redact_string(scanner, input.user_id),
        resource: redact_string(scanner, input.resource),
        result: input.result,
        metadata: redact_map(scanner, input.metadata),
    }
}

/// `map` with its keys redacted, and its values redacted on their own and as the value of
/// their member (see [`redact_member`]).
pub(crate) fn redact_map(scanner: &Scanner, map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(name, value)| {
            let name = redact_string(scanner, name);
            let value = redact_value(scanner, &name, value);
            (name, value)
        })
        .collect()
}

/// `value`, held by the member `name` (directly, or in an array), redacted.
fn redact_value(scanner: &Scanner, name: &str, value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(redact_member(scanner, name, text)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| redact_value(scanner, name, item))
                .collect(),
        ),
        Value::Object(map) => Value::Object(redact_map(scanner, map)),
        scalar => scalar,
    }
}

/// What a value becomes when a credential match starts in its member's name and may reach
/// into it, so that the value's own part of the match cannot be told apart.
const WITHHELD: &str = "********";

/// `value` redacted on its own, then as the scanner sees it written after its member's
/// `name`, as `name=value`: rules that need the context of an assignment or of PostHog's
/// name (an unprefixed legacy personal key under `posthog_personal_api_key`, any literal
/// under `POSTHOG_API_SECRET`) see nothing in the value alone.
fn redact_member(scanner: &Scanner, name: &str, value: String) -> String {
    let value = redact_string(scanner, value);
    let prefix = format!("{name}=");
    let context = format!("{prefix}{value}");
    match scanner.redact(&context) {
        Cow::Borrowed(_) => value,
        // Each match is replaced by its mask in place, so an intact `name=` means every
        // match starts in the value and what follows is the value with them masked (a
        // match that began in the name and still left `name=` intact is masked past it).
        Cow::Owned(redacted) => match redacted.strip_prefix(&prefix) {
            Some(redacted_value) => redacted_value.to_owned(),
            None => WITHHELD.to_owned(),
        },
    }
}

pub(crate) fn redact_string(scanner: &Scanner, text: String) -> String {
    match scanner.redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(redacted) => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 43 URL-safe characters, as `secrets.token_urlsafe(32)` made personal API keys before
    /// 2021: a credential only next to PostHog's name.
    const LEGACY_KEY: &str = "hT4kQ9xZr2LmW7vB1nC8pS3dF6gJ0yE5uAtsK2oPqRw";
    /// A literal a credential only where a PostHog-named secret is assigned it.
    const SECRET: &str = "Zq81LmvT0xWy7KpQ2sNdR4";

    fn redacted(metadata: Value) -> String {
        let scanner = default_scanner().unwrap();
        let Value::Object(map) = metadata else {
            panic!("an object")
        };
        Value::Object(redact_map(&scanner, map)).to_string()
    }

    #[test]
    fn values_are_redacted_in_the_context_of_their_member_name() {
        let scanner = default_scanner().unwrap();
        for raw in [LEGACY_KEY, SECRET] {
            assert_eq!(scanner.redact(raw), raw, "no rule fires on the value alone");
        }
        let masked_key = hogguard_secret::mask(LEGACY_KEY);
        let masked_secret = hogguard_secret::mask(SECRET);
        assert_eq!(
            redacted(json!({
                "posthog_personal_api_key": LEGACY_KEY,
                "POSTHOG_API_SECRET": SECRET,
            })),
            json!({
                "posthog_personal_api_key": masked_key,
                "POSTHOG_API_SECRET": masked_secret,
            })
            .to_string()
        );
        // The nearest member's name counts, at any depth and through arrays.
        let nested = json!({"deploy": {"env": {"POSTHOG_API_SECRET": masked_secret}}}); // hogguard:allow
        assert_eq!(
            redacted(json!({"deploy": {"env": {"POSTHOG_API_SECRET": SECRET}}})),
            nested.to_string()
        );
        assert_eq!(
            redacted(json!({"posthog_personal_api_keys": [LEGACY_KEY, {"note": "kept"}]})),
            json!({"posthog_personal_api_keys": [masked_key, {"note": "kept"}]}).to_string()
        );
        // Other names leave such values alone; plain redaction still applies everywhere.
        let personal = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Personal);
        assert_eq!(
            redacted(json!({"note": SECRET, "pasted": format!("oops {personal}")})),
            json!({"note": SECRET, "pasted": format!("oops {}", hogguard_secret::mask(&personal))})
                .to_string()
        );
    }

    #[test]
    fn a_match_reaching_from_the_name_into_the_value_withholds_the_value() {
        let rule = hogguard_scan::CustomRule {
            id: "password-assignment".to_owned(),
            regex: r"password=\S+".to_owned(),
            keywords: Vec::new(),
            min_entropy: None,
            severity: hogguard_scan::Severity::High,
            secret: true,
            description: None,
        };
        let scanner = Scanner::new(&[rule], ScanOptions::default()).unwrap();
        let value = redact_member(&scanner, "password", "hunter2hunter2".to_owned());
        assert_eq!(value, WITHHELD);
    }
}
