//! Is a found secret live? Asks PostHog with the cheapest read each credential kind allows,
//! in every region the key could belong to, and says "invalid" only when every region said so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hogguard_secret::{CredentialKind, Secret};

use crate::client::{CURRENT_KEY_PATH, ME_PATH};
use crate::config::ClientConfig;
use crate::deployment::{Deployment, place_name};
use crate::error::Error;
use crate::hosts::{BaseUrl, Region};
use crate::model::{PersonalKeyInfo, UserInfo};
use crate::transport::{Call, Transport};

/// The feature-flag local-evaluation endpoint: the one read a `phs_` secret may make.
const LOCAL_EVALUATION_PATH: &str = "/api/feature_flag/local_evaluation";
/// How many secrets are probed at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Why a refresh token is never probed.
pub const REFRESH_TOKEN_REASON: &str = "cannot be verified safely: an OAuth refresh token is single-use, so exchanging it would revoke it";
/// Why a project API key is never probed.
pub const PROJECT_KEY_REASON: &str =
    "not a secret: a project API key is public by design, and capture accepts any well-shaped one";
/// Why a value that is no PostHog API credential is never probed.
pub const NOT_A_CREDENTIAL_REASON: &str = "not a PostHog API credential";

/// What PostHog said about a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyStatus {
    /// PostHog accepted it: it works and must be rotated if leaked.
    Live(Box<LiveKey>),
    /// Every place it could belong to answered that it is invalid.
    Invalid,
    /// No verdict: a place failed to answer (5xx, network, timeout, throttling beyond the
    /// retry bound), the answer was inconclusive, or the kind is never probed.
    Unknown {
        /// Why, for people.
        reason: String,
    },
}

impl KeyStatus {
    /// The cloud region a live key belongs to.
    pub fn region(&self) -> Option<Region> {
        match self {
            KeyStatus::Live(live) => live.region,
            _ => None,
        }
    }

    /// Whether the key is live.
    pub fn is_live(&self) -> bool {
        matches!(self, KeyStatus::Live(_))
    }

    /// The status's stable name in machine-readable output: `live`, `invalid`, `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyStatus::Live(_) => "live",
            KeyStatus::Invalid => "invalid",
            KeyStatus::Unknown { .. } => "unknown",
        }
    }
}

/// Where a live key belongs and what PostHog showed about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveKey {
    /// The cloud region that accepted it; `None` on a self-hosted instance.
    pub region: Option<Region>,
    /// What PostHog's answer showed.
    pub evidence: Evidence,
}

/// What the answer that proved a key live showed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// A personal API key's metadata, scopes included (from `@current`).
    PersonalKey(PersonalKeyInfo),
    /// The owner of a personal API key or OAuth access token (from `/api/users/@me/`).
    User(UserInfo),
    /// `/api/users/@me/` authenticated the credential and then refused it, e.g. for lack of
    /// `user:read`: the credential works, its reach is unknown.
    UserEndpointDenied {
        /// PostHog's refusal.
        reason: String,
    },
    /// The local-evaluation endpoint accepted a `phs_` secret (a project secret API key or a
    /// team secret token).
    SecretKey,
}

/// Verifies secrets against PostHog, each distinct secret once per call, several at a time.
///
/// ```
/// use hogguard_posthog::{ClientConfig, Deployment, KeyStatus, Regions, Region, Verifier};
/// use hogguard_secret::Secret;
/// use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, UserSpec};
///
/// let (us, eu) = (FakeHog::start(), FakeHog::start());
/// let user = eu.add_user(UserSpec::new("ops@acme.test"));
/// let key = eu.add_personal_key(user.id, PersonalKeySpec::new("ci").scopes(["user:read"]));
///
/// let regions = Regions::new(us.base_url(), eu.base_url())?;
/// let verifier = Verifier::new(Deployment::Cloud { regions, first: Region::Us }, &ClientConfig::default());
/// let statuses = verifier.verify_all(&[Secret::new(key.value), Secret::new("phx_NotAKeyAnywhere1234567890")]);
/// assert_eq!(statuses[0].region(), Some(Region::Eu));
/// assert_eq!(statuses[1], KeyStatus::Invalid);
/// # Ok::<(), hogguard_posthog::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    transport: Transport,
    deployment: Deployment,
    concurrency: usize,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("deployment", &self.deployment)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// How a credential kind is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// `@current`, falling back to `@me`.
    PersonalKey,
    /// `@me` (the personal-key authenticator skips `pha_` tokens, OAuth takes them).
    OAuthAccessToken,
    /// Local evaluation.
    SecretKey,
}

/// One place's answer: the evidence that the key is live there, or why not.
type PlaceAnswer = Result<Evidence, NotLive>;

/// A place's answer other than "live".
#[derive(Debug)]
enum NotLive {
    /// The place said the credential is invalid.
    Invalid,
    /// No verdict from this place.
    Inconclusive(Error),
}

impl Verifier {
    /// A verifier asking `deployment`, [`DEFAULT_CONCURRENCY`] secrets at a time.
    pub fn new(deployment: Deployment, config: &ClientConfig) -> Verifier {
        Verifier {
            transport: Transport::new(config),
            deployment,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Probes at most `threads` secrets at once (at least one).
    pub fn concurrency(mut self, threads: usize) -> Verifier {
        self.concurrency = threads.max(1);
        self
    }

    /// The status of each secret, in input order. Each distinct secret (by fingerprint) is
    /// probed once, however often it appears; every secret gets a status, whatever fails.
    pub fn verify_all(&self, secrets: &[Secret]) -> Vec<KeyStatus> {
        let mut distinct: Vec<&Secret> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let slots: Vec<usize> = secrets
            .iter()
            .map(|secret| {
                *index_of.entry(secret.fingerprint()).or_insert_with(|| {
                    distinct.push(secret);
                    distinct.len() - 1
                })
            })
            .collect();
        let statuses: Mutex<Vec<Option<KeyStatus>>> = Mutex::new(vec![None; distinct.len()]);
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..self.concurrency.min(distinct.len()) {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(secret) = distinct.get(index) else {
                            break;
                        };
                        let status = self.verify(secret);
                        let mut statuses = statuses
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        statuses[index] = Some(status);
                    }
                });
            }
        });
        let statuses = statuses
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .into_iter()
            // `thread::scope` re-raises a worker's panic, so every slot is filled here.
            .map(|slot| {
                statuses[slot]
                    .clone()
                    .expect("every distinct secret was probed")
            })
            .collect()
    }

    /// The status of one secret.
    pub fn verify(&self, secret: &Secret) -> KeyStatus {
        let probe = match probe_for(secret) {
            Ok(probe) => probe,
            Err(reason) => {
                return KeyStatus::Unknown {
                    reason: reason.to_owned(),
                };
            }
        };
        let mut answers = Vec::new();
        for (region, api) in self.deployment.targets() {
            match self.ask(probe, secret, api) {
                Ok(evidence) => return KeyStatus::Live(Box::new(LiveKey { region, evidence })),
                Err(not_live) => answers.push((region, not_live)),
            }
        }
        verdict(&answers)
    }

    fn ask(&self, probe: Probe, secret: &Secret, api: &BaseUrl) -> PlaceAnswer {
        match probe {
            Probe::PersonalKey => {
                match self
                    .transport
                    .get_json::<PersonalKeyInfo>(api.join(CURRENT_KEY_PATH), secret)
                {
                    Ok(info) => Ok(Evidence::PersonalKey(info)),
                    Err(Error::InvalidCredential { .. }) => Err(NotLive::Invalid),
                    Err(error) if error.is_transient() => Err(NotLive::Inconclusive(error)),
                    // `@current` is not what this PostHog serves to this key; `@me` is the
                    // documented fallback.
                    Err(_) => self.ask_me(secret, api),
                }
            }
            Probe::OAuthAccessToken => self.ask_me(secret, api),
            Probe::SecretKey => {
                match self
                    .transport
                    .send(&Call::get(api.join(LOCAL_EVALUATION_PATH), secret))
                {
                    Ok(_) => Ok(Evidence::SecretKey),
                    Err(Error::InvalidCredential { .. }) => Err(NotLive::Invalid),
                    Err(error) => Err(NotLive::Inconclusive(error)),
                }
            }
        }
    }

    /// `GET /api/users/@me/`: 200 or a refusal after authentication means live; an invalid
    /// credential means invalid. `not_authenticated` is inconclusive: PostHog did not look at
    /// the credential at all.
    fn ask_me(&self, secret: &Secret, api: &BaseUrl) -> PlaceAnswer {
        match self
            .transport
            .get_json::<UserInfo>(api.join(ME_PATH), secret)
        {
            Ok(user) => Ok(Evidence::User(user)),
            Err(Error::InvalidCredential { .. }) => Err(NotLive::Invalid),
            Err(
                error @ (Error::MissingScope { .. }
                | Error::PermissionDenied { .. }
                | Error::PersonalKeyNotAllowed),
            ) => Ok(Evidence::UserEndpointDenied {
                reason: error.to_string(),
            }),
            Err(error) => Err(NotLive::Inconclusive(error)),
        }
    }
}

/// How `secret` can be probed, or why it is not.
fn probe_for(secret: &Secret) -> Result<Probe, &'static str> {
    match CredentialKind::from_value(secret.expose()) {
        Some(CredentialKind::PersonalApiKey) => Ok(Probe::PersonalKey),
        Some(CredentialKind::ProjectSecretApiKey) => Ok(Probe::SecretKey),
        Some(CredentialKind::OAuthAccessToken) => Ok(Probe::OAuthAccessToken),
        Some(CredentialKind::OAuthRefreshToken) => Err(REFRESH_TOKEN_REASON),
        Some(CredentialKind::ProjectApiKey) => Err(PROJECT_KEY_REASON),
        None if hogguard_secret::is_legacy_personal_key_shape(secret.expose()) => {
            Ok(Probe::PersonalKey)
        }
        _ => Err(NOT_A_CREDENTIAL_REASON),
    }
}

/// The verdict when no place said live: invalid only if every place said invalid.
fn verdict(answers: &[(Option<Region>, NotLive)]) -> KeyStatus {
    if answers
        .iter()
        .all(|(_, answer)| matches!(answer, NotLive::Invalid))
    {
        return KeyStatus::Invalid;
    }
    let answers: Vec<(&str, String)> = answers
        .iter()
        .map(|(region, answer)| {
            let text = match answer {
                NotLive::Invalid => "invalid".to_owned(),
                NotLive::Inconclusive(error) => error.with_causes(),
            };
            (place_name(*region), text)
        })
        .collect();
    // The same answer from every place (no network at all, typically) is said once.
    let reason = match answers.split_first() {
        Some(((_, first), rest)) if !rest.is_empty() && rest.iter().all(|(_, t)| t == first) => {
            let places: Vec<&str> = answers.iter().map(|&(place, _)| place).collect();
            format!("{}: {first}", places.join(" and "))
        }
        _ => answers
            .iter()
            .map(|(place, text)| format!("{place}: {text}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    KeyStatus::Unknown { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_probe() {
        let probe = |value: &str| probe_for(&Secret::new(value));
        assert_eq!(probe("phx_abc"), Ok(Probe::PersonalKey));
        assert_eq!(probe("phs_abc"), Ok(Probe::SecretKey));
        assert_eq!(probe("pha_abc"), Ok(Probe::OAuthAccessToken));
        assert_eq!(probe("phr_abc"), Err(REFRESH_TOKEN_REASON));
        assert_eq!(probe("phc_abc"), Err(PROJECT_KEY_REASON));
        assert_eq!(probe("whsec_abc"), Err(NOT_A_CREDENTIAL_REASON));
        assert_eq!(probe("hello"), Err(NOT_A_CREDENTIAL_REASON));
        assert_eq!(
            probe("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ_-01234"),
            Ok(Probe::PersonalKey)
        );
    }

    #[test]
    fn invalid_needs_every_place_to_say_so() {
        let invalid = (Some(Region::Us), NotLive::Invalid);
        assert_eq!(
            verdict(&[invalid, (Some(Region::Eu), NotLive::Invalid)]),
            KeyStatus::Invalid
        );
        let failed = NotLive::Inconclusive(Error::Server {
            status: 503,
            detail: "Service Unavailable".to_owned(),
        });
        assert_eq!(
            verdict(&[
                (Some(Region::Us), NotLive::Invalid),
                (Some(Region::Eu), failed)
            ]),
            KeyStatus::Unknown {
                reason: "us: invalid; eu: PostHog server error (HTTP 503): Service Unavailable"
                    .to_owned()
            }
        );
        assert_eq!(verdict(&[(None, NotLive::Invalid)]), KeyStatus::Invalid);
    }

    #[test]
    fn the_same_failure_everywhere_is_said_once() {
        let unreachable = || {
            NotLive::Inconclusive(Error::Server {
                status: 502,
                detail: "Bad Gateway".to_owned(),
            })
        };
        assert_eq!(
            verdict(&[
                (Some(Region::Eu), unreachable()),
                (Some(Region::Us), unreachable())
            ]),
            KeyStatus::Unknown {
                reason: "eu and us: PostHog server error (HTTP 502): Bad Gateway".to_owned()
            }
        );
    }
}
