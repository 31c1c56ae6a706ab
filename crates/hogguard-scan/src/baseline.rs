//! Baselines: known findings to suppress, keyed by content fingerprint, so that a moved line
//! or a squashed commit stays suppressed and no secret is stored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Finding};

/// The current baseline file format.
const VERSION: u32 = 1;
/// The largest baseline file read: far beyond any real one (a few hundred bytes per secret).
const MAX_BASELINE_BYTES: u64 = 64 << 20;

/// What is wrong with a baseline document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// It is not the JSON of a baseline.
    #[error("it is not a baseline document")]
    Syntax(#[source] serde_json::Error),
    /// Its format version is not one this hogguard reads.
    #[error("version {0} is not supported (expected {VERSION})")]
    Version(u32),
    /// A key of `findings` is not a fingerprint (a raw secret, say).
    #[error("`{0}` is not a fingerprint (64 lowercase hex digits)")]
    NotAFingerprint(String),
}

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
    /// Why it is accepted (a public test vector, a revoked key), written by a person; kept
    /// when the baseline is written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
                    reason: None,
                });
        }
        baseline
    }

    /// This baseline with the reasons `earlier` gave for the same findings.
    pub fn with_reasons_from(mut self, earlier: &Baseline) -> Self {
        for (fingerprint, entry) in &mut self.findings {
            if let Some(before) = earlier.findings.get(fingerprint) {
                entry.reason.clone_from(&before.reason);
            }
        }
        self
    }

    /// Reads a baseline file, which must be a regular file of reasonable size.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = hogguard_fs::read_regular(path, MAX_BASELINE_BYTES)
            .map_err(|source| Error::BaselineFile { source })?;
        Self::parse(&bytes).map_err(|source| Error::Baseline {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses a baseline document.
    pub fn parse(text: &[u8]) -> Result<Self, BaselineError> {
        let baseline: Baseline = serde_json::from_slice(text).map_err(BaselineError::Syntax)?;
        if baseline.version != VERSION {
            return Err(BaselineError::Version(baseline.version));
        }
        if let Some(bad) = baseline.findings.keys().find(|k| !is_fingerprint(k)) {
            // A raw secret pasted here must not be echoed back whole.
            return Err(BaselineError::NotAFingerprint(hogguard_secret::mask(bad)));
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
        assert!(matches!(
            Baseline::parse(b""),
            Err(BaselineError::Syntax(_))
        ));
        assert!(matches!(
            Baseline::parse(br#"{"version":2,"findings":{}}"#),
            Err(BaselineError::Version(2))
        ));
        let bad = Baseline::parse(
            br#"{"version":1,"findings":{"phx_raw":{"rule":"r","masked":"m","path":"p"}}}"#,
        )
        .unwrap_err();
        assert!(bad.to_string().contains("not a fingerprint"), "{bad}");
        assert!(Baseline::parse(br#"{"version":1,"findings":{}}"#).is_ok());
    }

    #[test]
    fn reasons_are_read_and_kept_when_the_baseline_is_written_again() {
        let fingerprint = "a".repeat(64);
        let earlier = Baseline::parse(
            format!(
                r#"{{"version":1,"findings":{{"{fingerprint}":{{"rule":"r","masked":"whse...abcd","path":"p","reason":"a public test vector"}}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let entry = |reason: Option<&str>| BaselineEntry {
            rule: "r".into(),
            masked: "whse...abcd".into(),
            path: "moved/p".into(),
            reason: reason.map(str::to_owned),
        };
        let again = Baseline {
            version: VERSION,
            findings: [
                (fingerprint.clone(), entry(None)),
                ("b".repeat(64), entry(None)),
            ]
            .into_iter()
            .collect(),
        }
        .with_reasons_from(&earlier);
        assert_eq!(
            again.findings[&fingerprint],
            entry(Some("a public test vector"))
        );
        assert_eq!(again.findings[&"b".repeat(64)].reason, None);
        let text = again.to_json();
        assert!(
            text.contains("\"reason\": \"a public test vector\""),
            "{text}"
        );
        assert_eq!(
            text.matches("reason").count(),
            1,
            "no empty reasons written"
        );
    }
}
