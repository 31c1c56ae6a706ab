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

/// `map` with its keys and values redacted.
pub(crate) fn redact_map(scanner: &Scanner, map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(key, value)| (redact_string(scanner, key), redact_value(scanner, value)))
        .collect()
}

fn redact_value(scanner: &Scanner, value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(redact_string(scanner, text)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| redact_value(scanner, item))
                .collect(),
        ),
        Value::Object(map) => Value::Object(redact_map(scanner, map)),
        scalar => scalar,
    }
}

pub(crate) fn redact_string(scanner: &Scanner, text: String) -> String {
    match scanner.redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(redacted) => redacted,
    }
}
