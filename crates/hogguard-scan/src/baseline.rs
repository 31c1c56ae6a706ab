//! Baselines: known findings to suppress, keyed by content fingerprint, so that a moved line
//! or a squashed commit stays suppressed and no secret is stored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Finding};

/// The current baseline file format.
const VERSION: u32 = 1;

/// A set of accepted findings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Format version, 1.
    pub version: u32,
    /// Accepted secrets by fingerprint (hex SHA-256 of the value).
    pub findings: BTreeMap<String, BaselineEntry>,
}

/// What a baseline remembers of a finding: enough to recognise it, never the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// The rule that found it.
    pub rule: String,
    /// PostHog's mask of the value, to tell entries apart when reading the file.
    pub masked: String,
    /// Where it was first seen, for humans; not used for matching.
    pub path: String,
}

impl Baseline {
    /// A baseline that accepts every finding in `findings`.
    pub fn from_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut baseline = Baseline {
            version: VERSION,
            findings: BTreeMap::new(),
        };
        for finding in findings {
            baseline
                .findings
                .entry(finding.fingerprint.clone())
                .or_insert_with(|| BaselineEntry {
                    rule: finding.rule.clone(),
                    masked: finding.masked.clone(),
                    path: finding.path.clone(),
                });
        }
        baseline
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| Error::Baseline {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a baseline document.
    pub fn parse(text: &str) -> Result<Self, String> {
        let baseline: Baseline = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if baseline.version != VERSION {
            return Err(format!(
                "version {} is not supported (expected {VERSION})",
                baseline.version
            ));
        }
        if let Some(bad) = baseline.findings.keys().find(|k| !is_fingerprint(k)) {
            return Err(format!(
                "`{bad}` is not a fingerprint (64 lowercase hex digits)"
            ));
        }
        Ok(baseline)
    }

    /// Whether the baseline accepts `finding`.
    pub fn contains(&self, finding: &Finding) -> bool {
        self.findings.contains_key(&finding.fingerprint)
    }

    /// The baseline as a pretty JSON document with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a baseline serialises");
        text.push('\n');
        text
    }
}

fn is_fingerprint(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_documents() {
        assert!(Baseline::parse("").is_err());
        assert!(
            Baseline::parse(r#"{"version":2,"findings":{}}"#)
                .unwrap_err()
                .contains("version 2")
        );
        assert!(
            Baseline::parse(
                r#"{"version":1,"findings":{"phx_raw":{"rule":"r","masked":"m","path":"p"}}}"#
            )
            .unwrap_err()
            .contains("not a fingerprint")
        );
        assert!(Baseline::parse(r#"{"version":1,"findings":{}}"#).is_ok());
    }
}
