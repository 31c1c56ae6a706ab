//! Reporting a leaked secret to PostHog's public `POST /api/revoke_leaked_key`, which rolls a
//! personal or project secret API key (and emails its owner) or revokes an OAuth token. The
//! endpoint is region-local, so a key of unknown home is reported to both cloud regions.

use hogguard_secret::{CredentialKind, Secret};
use serde::{Deserialize, Serialize};

use crate::config::ClientConfig;
use crate::deployment::Deployment;
use crate::error::Error;
use crate::hosts::{BaseUrl, Region};
use crate::transport::{Call, Method, Repeat, Transport, json_body};

/// The public leaked-key report path (no trailing slash, as PostHog documents it).
const REVOKE_PATH: &str = "/api/revoke_leaked_key";

/// What one PostHog answered to a leaked-key report.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RevokeReport {
    /// Whether PostHog knew the secret (and rolled or revoked it).
    pub found: bool,
    /// What it was: `personal_api_key`, `project_secret_api_key`, `oauth_access_token`,
    /// `oauth_refresh_token`; `None` when not found.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// The outcome of reporting a secret to one place.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The cloud region asked; `None` for a self-hosted instance.
    pub region: Option<Region>,
    /// The host asked.
    pub api: BaseUrl,
    /// Its answer.
    pub result: Result<RevokeReport, Error>,
}

/// Reports leaked secrets to PostHog so it rolls or revokes them. The new value of a rolled
/// key goes to its owner by email, never to the reporter.
///
/// ```
/// use hogguard_posthog::{ClientConfig, Deployment, Hosts, Revoker};
/// use hogguard_secret::Secret;
/// use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, UserSpec};
///
/// let hog = FakeHog::start();
/// let user = hog.add_user(UserSpec::new("ops@acme.test"));
/// let key = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
/// let revoker = Revoker::new(Deployment::of(&Hosts::new(hog.base_url())?), &ClientConfig::default());
///
/// let revocations = revoker.revoke_leaked(&Secret::new(key.value.clone()), None)?;
/// assert_eq!(revocations[0].result.as_ref().map(|report| report.found), Ok(true));
/// assert!(!hog.is_live(&key.value));
/// # Ok::<(), hogguard_posthog::Error>(())
/// ```
#[derive(Clone)]
pub struct Revoker {
    transport: Transport,
    deployment: Deployment,
}

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoker")
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl Revoker {
    /// A revoker reporting to `deployment`.
    pub fn new(deployment: Deployment, config: &ClientConfig) -> Revoker {
        Revoker {
            transport: Transport::new(config),
            deployment,
        }
    }

    /// Reports `secret` to `home` (its region, e.g. from a live [`KeyStatus`]), or to both
    /// cloud regions when `home` is `None`; a self-hosted instance is always the one place.
    /// Returns one result per place asked. Fails at once only for a public project API key or
    /// a value that is no PostHog API credential, which are never reported.
    ///
    /// A report is retried when throttled but never after a server error: the key may already
    /// have been rolled, and a second report would come back `found: false`.
    ///
    /// [`KeyStatus`]: crate::KeyStatus
    pub fn revoke_leaked(
        &self,
        secret: &Secret,
        home: Option<Region>,
    ) -> Result<Vec<Revocation>, Error> {
        match CredentialKind::from_value(secret.expose()) {
            Some(
                CredentialKind::PersonalApiKey
                | CredentialKind::ProjectSecretApiKey
                | CredentialKind::OAuthAccessToken
                | CredentialKind::OAuthRefreshToken,
            )
            | None => {}
            Some(kind) => {
                return Err(Error::UnsupportedCredential {
                    kind: kind.as_str(),
                    why: "PostHog revokes only personal and secret API keys and OAuth tokens",
                });
            }
        }
        let targets = self.deployment.targets();
        Ok(targets
            .into_iter()
            .filter(|(region, _)| home.is_none() || region.is_none() || *region == home)
            .map(|(region, api)| Revocation {
                region,
                api: api.clone(),
                result: self.report(secret, api),
            })
            .collect())
    }

    fn report(&self, secret: &Secret, api: &BaseUrl) -> Result<RevokeReport, Error> {
        #[derive(Serialize)]
        struct Report<'a> {
            token: &'a str,
        }
        // Serialised straight into the body buffer, which the call zeroes when dropped.
        let body = json_body(&Report {
            token: secret.expose(),
        });
        self.transport
            .send(&Call {
                method: Method::Post,
                url: api.join(REVOKE_PATH),
                bearer: None,
                json_body: Some(body),
                repeat: Repeat::Unsafe,
                body_secret: Some(secret),
            })?
            .json()
    }
}
