//! Machine-readable reports: hogguard's JSON document and SARIF 2.1.0 for code scanning.
//! Both carry masks and fingerprints only, never a secret.

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Finding, Rule, Severity};

/// Counts that close a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Findings reported.
    pub findings: usize,
    /// Reported findings that are secrets (they fail the scan).
    pub secrets: usize,
    /// Findings suppressed by a baseline.
    pub suppressed: usize,
    /// Inputs scanned.
    pub inputs: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Inputs skipped as binary.
    pub binary_skipped: u64,
    /// Inputs that could not be read.
    pub warnings: usize,
}

/// The JSON report: `{"version":1,"findings":[...],"summary":{...}}`.
pub fn json(findings: &[Finding], summary: &Summary) -> String {
    /// The document, as a struct so that `version` comes first.
    #[derive(Serialize)]
    struct Document<'a> {
        version: u32,
        findings: &'a [Finding],
        summary: &'a Summary,
    }
    serde_json::to_string_pretty(&Document {
        version: 1,
        findings,
        summary,
    })
    .expect("a report serialises")
}

/// A SARIF 2.1.0 log that GitHub code scanning accepts. `partialFingerprints` carry the content
/// fingerprint, so an alert follows its secret when lines move.
pub fn sarif(findings: &[Finding], rules: &[Rule], tool_version: &str) -> String {
    let rule_index = |id: &str| rules.iter().position(|r| r.id == id);
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": { "text": format!("{}: {}", rule_description(rules, &f.rule), f.masked) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.path) },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
                "partialFingerprints": { "hogguardFingerprint/v1": f.fingerprint },
                "properties": { "kind": f.kind.as_str(), "secret": f.secret, "masked": f.masked },
            });
            if let Some(index) = rule_index(&f.rule) {
                result["ruleIndex"] = json!(index);
            }
            if let Some(encoding) = f.decoded_from {
                result["properties"]["decodedFrom"] = json!(encoding);
            }
            if let Some(commit) = &f.commit {
                result["properties"]["commit"] = json!(commit);
                result["properties"]["author"] = json!(f.author);
                result["properties"]["date"] = json!(f.date);
            }
            result
        })
        .collect();
    let sarif_rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut properties = json!({ "tags": ["security", "secret", "posthog"] });
            if let Some(score) = security_severity(r.severity) {
                properties["security-severity"] = json!(score);
            }
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.description },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": properties,
            })
        })
        .collect();
    let document = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "hogguard",
                "version": tool_version,
                "informationUri": "https://github.com/hogguard/hogguard",
                "rules": sarif_rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&document).expect("a SARIF log serialises")
}

fn rule_description<'a>(rules: &'a [Rule], id: &str) -> &'a str {
    rules
        .iter()
        .find(|r| r.id == id)
        .map_or("secret", |r| r.description.as_str())
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Info | Severity::Low => "note",
        Severity::Medium => "warning",
        Severity::High | Severity::Critical => "error",
    }
}

/// GitHub's `security-severity` score; information findings have none.
fn security_severity(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Info => None,
        Severity::Low => Some("3.0"),
        Severity::Medium => Some("5.5"),
        Severity::High => Some("8.0"),
        Severity::Critical => Some("9.5"),
    }
}

/// A relative URI reference for a path: forward slashes, and percent-encoding of bytes that
/// may not stand in a URI.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.replace('\\', "/").bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(uri("src/my file.env"), "src/my%20file.env");
        assert_eq!(uri("a\\b#c"), "a/b%23c");
    }
}
