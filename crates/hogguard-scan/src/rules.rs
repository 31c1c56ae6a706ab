//! The rules: PostHog's built-in credential rules and the custom rules of `hogguard.toml`.

use hogguard_secret::CredentialKind;
use serde::{Deserialize, Serialize};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, never a failure (public project keys).
    Info,
    /// A weak or unusual secret.
    Low,
    /// A secret whose reach is unclear.
    Medium,
    /// A secret that grants access.
    High,
    /// A secret that can read or change a whole organisation.
    Critical,
}

impl Severity {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A rule as findings and reports see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable identifier, used in output, baselines and SARIF.
    pub id: String,
    /// What the rule finds.
    pub kind: CredentialKind,
    /// How much a finding matters.
    pub severity: Severity,
    /// Whether a finding is a leaked secret (and so fails the scan).
    pub secret: bool,
    /// One sentence for humans and SARIF.
    pub description: String,
}

/// A rule from `[[scan.rules]]` in `hogguard.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// Stable identifier.
    pub id: String,
    /// A regular expression (Rust `regex` syntax). With a capture group, the first group is the
    /// secret; without one, the whole match is.
    pub regex: String,
    /// Words of which at least one must occur (case-insensitively) in the text before the
    /// regex runs; they make a rule cheap.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The lowest Shannon entropy (bits per byte) a secret may have; lower values are ignored.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// Severity of the findings (default `high`).
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Whether a finding is a secret that fails the scan (default `true`).
    #[serde(default = "default_true")]
    pub secret: bool,
    /// What the rule finds, for humans.
    #[serde(default)]
    pub description: Option<String>,
}

fn default_severity() -> Severity {
    Severity::High
}

fn default_true() -> bool {
    true
}

/// Identifiers of the built-in rules, in the order [`builtin_rules`] returns them.
pub(crate) mod builtin {
    pub(crate) const PROJECT_API_KEY: usize = 0;
    pub(crate) const PERSONAL_API_KEY: usize = 1;
    pub(crate) const PROJECT_SECRET_API_KEY: usize = 2;
    pub(crate) const OAUTH_ACCESS_TOKEN: usize = 3;
    pub(crate) const OAUTH_REFRESH_TOKEN: usize = 4;
    pub(crate) const WEBHOOK_SECRET: usize = 5;
    pub(crate) const LEGACY_PERSONAL_API_KEY: usize = 6;
    pub(crate) const SECRET_ASSIGNMENT: usize = 7;
    pub(crate) const LEGACY_PROJECT_API_KEY: usize = 8;
    pub(crate) const CLIENT_TOKEN: usize = 9;
    pub(crate) const COUNT: usize = 10;
}

/// The built-in rules.
pub fn builtin_rules() -> Vec<Rule> {
    let rule = |id: &str, kind, severity, description: &str| Rule {
        id: id.to_owned(),
        kind,
        severity,
        secret: kind != CredentialKind::ProjectApiKey,
        description: description.to_owned(),
    };
    let rules = vec![
        rule(
            "posthog-project-api-key",
            CredentialKind::ProjectApiKey,
            Severity::Info,
            "PostHog project API key (phc_): public by design, listed for inventory only",
        ),
        rule(
            "posthog-personal-api-key",
            CredentialKind::PersonalApiKey,
            Severity::Critical,
            "PostHog personal API key (phx_): can read or change whatever its scopes reach",
        ),
        rule(
            "posthog-project-secret-api-key",
            CredentialKind::ProjectSecretApiKey,
            Severity::High,
            "PostHog project secret API key or team secret token (phs_)",
        ),
        rule(
            "posthog-oauth-access-token",
            CredentialKind::OAuthAccessToken,
            Severity::High,
            "PostHog OAuth access token (pha_)",
        ),
        rule(
            "posthog-oauth-refresh-token",
            CredentialKind::OAuthRefreshToken,
            Severity::High,
            "PostHog OAuth refresh token (phr_)",
        ),
        rule(
            "posthog-webhook-secret",
            CredentialKind::WebhookSecret,
            Severity::High,
            "Webhook signing secret (whsec_)",
        ),
        rule(
            "posthog-legacy-personal-api-key",
            CredentialKind::LegacyPersonalApiKey,
            Severity::Critical,
            "PostHog personal API key from before 2021 (43 characters, no prefix), named as a personal key or sent as a Bearer token to PostHog",
        ),
        rule(
            "posthog-secret-assignment",
            CredentialKind::PostHogSecret,
            Severity::Medium,
            "Literal value assigned to a PostHog-named secret, key or token",
        ),
        rule(
            "posthog-legacy-project-api-key",
            CredentialKind::ProjectApiKey,
            Severity::Info,
            "PostHog project API key from before 2021 (43 characters, no prefix), passed to an SDK or named as a project key: public by design",
        ),
        rule(
            "hogguard-client-token",
            CredentialKind::HogguardClientToken,
            Severity::High,
            "Client token of hogguard's PostHog API proxy (hgp_): whoever holds it calls PostHog with its client's scopes",
        ),
    ];
    debug_assert_eq!(rules.len(), builtin::COUNT);
    rules
}
