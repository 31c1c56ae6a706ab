//! What callers log ([`EntryInput`]) and what the log holds ([`Entry`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// Whether the audited action succeeded, written as `"success"` or `"failure"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action did what it was asked to.
    Success,
    /// The action failed or was refused.
    Failure,
}

impl Outcome {
    /// `"success"` or `"failure"`, as written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One action to record, as a caller describes it. Every string in it, metadata keys and
/// values included, is redacted by the scanner before it is written, so passing a raw key by
/// mistake never puts it in the log or in PostHog.
///
/// ```
/// use hogguard_audit::{EntryInput, Outcome};
///
/// let input = EntryInput::new("key.rotate", "ops@acme.test", "phx_...abcd", Outcome::Success)
///     .with_metadata("environment", "production")
///     .with_metadata("attempt", 2);
/// assert_eq!(input.metadata["attempt"], 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct EntryInput {
    /// What was done, dotted from general to specific (`key.rotate`, `scan.finished`).
    pub action: String,
    /// Who did it: the person or service account; PostHog's `distinct_id` when shipped. It
    /// must not be empty, because PostHog drops events without one.
    pub user_id: String,
    /// What it was done to (a key's mask, a project id, a file path).
    pub resource: String,
    /// Whether it succeeded.
    pub result: Outcome,
    /// Anything else worth keeping, as a JSON object.
    pub metadata: Map<String, Value>,
}

impl EntryInput {
    /// An input with empty metadata.
    pub fn new(
        action: impl Into<String>,
        user_id: impl Into<String>,
        resource: impl Into<String>,
        result: Outcome,
    ) -> EntryInput {
        EntryInput {
            action: action.into(),
            user_id: user_id.into(),
            resource: resource.into(),
            result,
            metadata: Map::new(),
        }
    }

    /// Adds one metadata member, replacing any of the same name.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> EntryInput {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// One entry of the log, as written (after redaction) and read back.
///
/// It serialises with the field names of the log line, `log` for [`log_id`](Self::log_id).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The id of the log the entry belongs to (32 lowercase hex digits), in every line so
    /// that lines cannot be moved between logs unnoticed.
    #[serde(rename = "log")]
    pub log_id: String,
    /// The entry's position, from 1, without gaps.
    pub seq: u64,
    /// When the entry was written (the writer's clock, in UTC).
    pub timestamp: Timestamp,
    /// The previous entry's hash ([`GENESIS_PREV`](crate::GENESIS_PREV) for seq 1).
    pub prev: String,
    /// What was done.
    pub action: String,
    /// Who did it.
    pub user_id: String,
    /// What it was done to.
    pub resource: String,
    /// Whether it succeeded.
    pub result: Outcome,
    /// Anything else recorded.
    pub metadata: Map<String, Value>,
    /// The hash of the line (64 lowercase hex digits); see the crate docs for what it covers.
    pub hash: String,
}
