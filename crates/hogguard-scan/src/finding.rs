//! Findings: what the scanner reports, with the secret held only as a [`Secret`].

use hogguard_secret::{CredentialKind, Secret};
use serde::{Serialize, Serializer};

use crate::rules::Severity;

/// One credential found at one place.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule that found it.
    pub rule: String,
    /// What kind of credential it is.
    #[serde(serialize_with = "kind_name")]
    pub kind: CredentialKind,
    /// Whether it is a secret (public `phc_` project keys are not).
    pub secret: bool,
    /// How much it matters.
    pub severity: Severity,
    /// The file, or the path of the blob in the commit that introduced it, or `-` for stdin.
    pub path: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based byte column.
    pub column: u64,
    /// The commit that first introduced the content (history scans).
    pub commit: Option<String>,
    /// The author of that commit, as `Name <email>`.
    pub author: Option<String>,
    /// The author date of that commit, RFC 3339.
    pub date: Option<String>,
    /// PostHog's mask of the secret.
    pub masked: String,
    /// Hex SHA-256 of the secret: the same wherever the secret moves.
    pub fingerprint: String,
    /// The git blob that holds it (history and staged scans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// True when no commit in the object store contains the blob (history scans).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
    /// True when no commit holds the blob but the index does: staged, not yet committed
    /// (history scans). `path` is then its path in the index.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub staged: bool,
    /// Further occurrences of the same secret by the same rule in the same input, counted
    /// rather than listed (beyond [`MAX_IDENTICAL_FINDINGS`](crate::MAX_IDENTICAL_FINDINGS)).
    #[serde(skip_serializing_if = "is_zero")]
    pub repeats: u64,
    /// What PostHog said of the secret (`scan --verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// What PostHog answered to leak reports of the secret (`scan --revoke`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<Revocation>,
    /// The raw value, for live verification; never serialised.
    #[serde(skip)]
    pub value: Secret,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

fn kind_name<S: Serializer>(kind: &CredentialKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
}

/// What PostHog said of a found secret: whether it works, and what it can reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// `live`, `invalid` or `unknown`.
    pub status: String,
    /// Why the status is `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The cloud region that accepted it (`us`, `eu`); none when self-hosted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The key's scopes, when PostHog showed them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The projects the key is restricted to; none means every project it can see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoped_projects: Option<Vec<u64>>,
    /// The organisations the key is restricted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoped_organizations: Option<Vec<String>>,
    /// Whom the key belongs to, when PostHog showed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// PostHog's answer to one leak report of a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// The host asked.
    pub host: String,
    /// The cloud region asked; none when self-hosted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether PostHog knew the secret and rolled or revoked it.
    pub found: Option<bool>,
    /// What PostHog said the secret was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Why the report failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
