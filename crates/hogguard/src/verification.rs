//! What PostHog says of a credential, shared by `scan --verify`, `keys` and `check`.

use anyhow::Result;
use hogguard_posthog::{Deployment, Evidence, KeyStatus};
use hogguard_scan::Verification;
use hogguard_secret::CredentialKind;

use crate::config::Config;

/// Kinds PostHog can tell live or dead. Webhook secrets and assigned values are not PostHog
/// credentials it knows; `phc_` keys are public.
pub(crate) fn is_verifiable(kind: CredentialKind) -> bool {
    matches!(
        kind,
        CredentialKind::PersonalApiKey
            | CredentialKind::LegacyPersonalApiKey
            | CredentialKind::ProjectSecretApiKey
            | CredentialKind::OAuthAccessToken
            | CredentialKind::OAuthRefreshToken
    )
}

/// Where keys may live: the configured host, or both cloud regions.
pub(crate) fn deployment(config: &Config) -> Result<Deployment> {
    Ok(Deployment::of(&config.posthog.hosts()?))
}

/// A status as reports show it.
pub(crate) fn verification(status: &KeyStatus) -> Verification {
    let mut verification = Verification {
        status: status.as_str().to_owned(),
        ..Verification::default()
    };
    match status {
        KeyStatus::Live(live) => {
            verification.region = live.region.map(|r| r.as_str().to_owned());
            match &live.evidence {
                Evidence::PersonalKey(info) => {
                    verification.scopes = Some(info.scopes.clone());
                    verification.scoped_projects = info.scoped_teams.clone();
                    verification.scoped_organizations = info.scoped_organizations.clone();
                }
                Evidence::User(user) => verification.owner = user.basic.email.clone(),
                Evidence::UserEndpointDenied { reason } => {
                    verification.reason = Some(reason.clone())
                }
                _ => {}
            }
        }
        KeyStatus::Unknown { reason } => verification.reason = Some(reason.clone()),
        _ => {}
    }
    verification
}
