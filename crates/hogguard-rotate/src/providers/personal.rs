//! Personal API keys (`phx_`), assisted: PostHog lets only its web app create and delete them,
//! so a person does that while hogguard checks, stores, verifies and confirms.

use hogguard_posthog::{Evidence, KeyStatus, PersonalKeyInfo, Verifier, scope_allowed};
use hogguard_secret::{CredentialKind, Secret};

use crate::error::RotateError;
use crate::journal::{Closure, KeyRef, Started};
use crate::outcome::Outcome;
use crate::providers::undecided;
use crate::request::{PersonalKeyProvider, RotationRequest};
use crate::session::{Holding, Session};
use crate::step::Step;

/// The page of PostHog's web app where personal API keys are created and deleted.
pub(crate) const KEYS_PAGE: &str = "/settings/user-api-keys";

/// Asks PostHog which key the old one is (`@current`): its id, scopes and restrictions.
pub(crate) fn prepare(
    provider: &PersonalKeyProvider,
    request: &RotationRequest,
    current: &Secret,
    rotation_id: String,
) -> Result<Started, RotateError> {
    let old_info = match provider.posthog.verifier().verify(current) {
        KeyStatus::Live(live) => match live.evidence {
            Evidence::PersonalKey(info) => Some(info),
            _ => None,
        },
        // A dead key in the store (e.g. revoked after a leak) is exactly what needs replacing.
        KeyStatus::Invalid => None,
        other => return Err(undecided(other, current.mask())),
    };
    let scopes = match (&provider.allowed_scopes, &old_info) {
        (Some(allowed), _) => allowed.clone(),
        (None, Some(info)) => info.scopes.clone(),
        (None, None) => {
            return Err(RotateError::NoAllowedScopes {
                mask: current.mask(),
            });
        }
    };
    let old_id = old_info.as_ref().map(|info| info.id.clone());
    Ok(Started {
        scopes,
        scoped_teams: old_info.as_ref().and_then(|info| info.scoped_teams.clone()),
        scoped_organizations: old_info.and_then(|info| info.scoped_organizations),
        ..Started::new(request, current, old_id, rotation_id)
    })
}

/// Runs the rotation from wherever it stands until it completes.
pub(crate) fn drive(
    session: &mut Session<'_>,
    provider: &PersonalKeyProvider,
) -> Result<Outcome, RotateError> {
    let verifier = provider.posthog.verifier();
    let mut unstored: Option<(KeyRef, Secret)> = None;
    loop {
        let view = session.store_view()?;
        match session.classify(view.current)? {
            Holding::Old(old) => {
                if let Some((key, value)) = unstored.take() {
                    session.store_new_key(&key, &value, Some(&old))?;
                    continue;
                }
                unstored = Some(obtain_new_key(session, provider, &verifier)?);
            }
            Holding::New(new) => {
                session.run_verify_command(&new)?;
                retire_old_key(session, provider, &verifier, view.previous.as_ref())?;
                session.drop_previous_key(view.previous.is_some())?;
                return session.close(Closure::Completed, Some(new));
            }
        }
    }
}

/// Returns the store to the old key while it still works; the person deletes the new key.
pub(crate) fn abort(
    session: &mut Session<'_>,
    provider: &PersonalKeyProvider,
) -> Result<Outcome, RotateError> {
    let view = session.store_view()?;
    let given: Vec<KeyRef> = session
        .journal
        .done_keys(Step::ObtainNewKey)
        .cloned()
        .collect();
    match session.classify(view.current)? {
        Holding::Old(_) => {
            session.start_abort()?;
            session.drop_previous_key(view.previous.is_some())?;
        }
        Holding::New(new) => {
            let old = session.started().old.clone();
            let previous = view
                .previous
                .filter(|previous| Some(previous.fingerprint()) == old.fingerprint);
            let Some(previous) = previous.filter(|previous| {
                !matches!(
                    provider.posthog.verifier().verify(previous),
                    KeyStatus::Invalid
                )
            }) else {
                return Err(RotateError::CannotAbort {
                    reason: format!(
                        "the old key {} no longer works (or is no longer kept); --resume \
                         completes the rotation with {}",
                        old.mask, new.mask
                    ),
                });
            };
            session.start_abort()?;
            session.restore_old_key(&previous)?;
        }
    }
    for key in given {
        session.interaction.show(&format!(
            "Delete the personal API key {}{} you created for this rotation at {}: hogguard \
             cannot delete personal API keys.",
            key.mask,
            key.id.map(|id| format!(" (id {id})")).unwrap_or_default(),
            provider.posthog.page(KEYS_PAGE)
        ));
    }
    session.close(Closure::Aborted, None)
}

/// Asks the person for a new key and checks it: a personal API key, not the old value, live
/// at PostHog (asked through `@current`, which also shows its scopes) and no broader than
/// allowed.
fn obtain_new_key(
    session: &mut Session<'_>,
    provider: &PersonalKeyProvider,
    verifier: &Verifier,
) -> Result<(KeyRef, Secret), RotateError> {
    session.begin(Step::ObtainNewKey, None)?;
    let instructions = instructions(session, provider);
    session.interaction.show(&instructions);
    let prompt = format!(
        "New personal API key for {}",
        session.request.credential_name()
    );
    let value = session
        .interaction
        .read_secret(&prompt)
        .map_err(|error| session.failed(Step::ObtainNewKey, error.into()))?;
    let info = check_new_key(session.started(), verifier, &value)
        .map_err(|error| session.failed(Step::ObtainNewKey, error))?;
    if session.started().old.id.as_ref() == Some(&info.id) {
        // Rolled instead of created: the old value is already dead, so storing this one is
        // the fastest way back to a working key.
        session.interaction.show(
            "This is the old key rolled in place: its old value stopped working when it was \
             rolled. Storing the new value now.",
        );
    }
    let key = KeyRef::of(&value, Some(info.id));
    session.done(Step::ObtainNewKey, Some(&key), None)?;
    Ok((key, value))
}

fn instructions(session: &Session<'_>, provider: &PersonalKeyProvider) -> String {
    let started = session.started();
    let mut text = format!(
        "PostHog lets only its web app create personal API keys. Open {} and create a key \
         labelled \"{} {}\" with exactly these scopes: {}.",
        provider.posthog.page(KEYS_PAGE),
        started.credential,
        started.rotation_id,
        started.scopes.join(", ")
    );
    match (&started.scoped_teams, provider.project_id) {
        (Some(teams), _) => {
            let teams: Vec<String> = teams.iter().map(u64::to_string).collect();
            text.push_str(&format!(" Restrict it to projects {}.", teams.join(", ")));
        }
        // The old key reaches every project; the new one needs only the environment's.
        (None, Some(project)) => text.push_str(&format!(
            " Restrict it to project {project}, the one this environment uses."
        )),
        (None, None) => {}
    }
    if let Some(organizations) = &started.scoped_organizations {
        text.push_str(&format!(
            " Restrict it to organizations {}.",
            organizations.join(", ")
        ));
    }
    for earlier in session.journal.done_keys(Step::ObtainNewKey) {
        text.push_str(&format!(
            " The key {}{} given earlier was never stored: paste it again, or delete it.",
            earlier.mask,
            earlier
                .id
                .as_ref()
                .map(|id| format!(" (id {id})"))
                .unwrap_or_default()
        ));
    }
    text
}

fn check_new_key(
    started: &Started,
    verifier: &Verifier,
    value: &Secret,
) -> Result<PersonalKeyInfo, RotateError> {
    let refused = |reason: &str| RotateError::NewKeyRefused {
        reason: reason.to_owned(),
    };
    if CredentialKind::from_value(value.expose()) != Some(CredentialKind::PersonalApiKey) {
        return Err(refused("it is not a personal API key (phx_...)"));
    }
    if Some(value.fingerprint()) == started.old.fingerprint {
        return Err(refused("it is the key being replaced"));
    }
    let info = match verifier.verify(value) {
        KeyStatus::Live(live) => match live.evidence {
            Evidence::PersonalKey(info) => info,
            _ => return Err(refused("PostHog did not show its scopes")),
        },
        KeyStatus::Invalid => return Err(refused("PostHog does not accept it")),
        other => return Err(undecided(other, value.mask())),
    };
    let excess = excess(&info, started);
    if excess.is_empty() {
        Ok(info)
    } else {
        Err(RotateError::NewKeyTooBroad { excess })
    }
}

/// What the new key may do beyond the rotation's policy: scopes outside the allowed ones, and
/// a wider reach than the old key's project or organisation restriction.
fn excess(info: &PersonalKeyInfo, started: &Started) -> Vec<String> {
    let mut excess: Vec<String> = info
        .scopes
        .iter()
        .filter(|scope| !scope_allowed(scope, &started.scopes))
        .cloned()
        .collect();
    if let Some(teams) = &started.scoped_teams {
        match &info.scoped_teams {
            None => excess.push("every project (the old key was restricted to projects)".into()),
            Some(held) => excess.extend(
                held.iter()
                    .filter(|team| !teams.contains(team))
                    .map(|team| format!("project {team}")),
            ),
        }
    }
    if let Some(organizations) = &started.scoped_organizations {
        match &info.scoped_organizations {
            None => excess
                .push("every organization (the old key was restricted to organizations)".into()),
            Some(held) => excess.extend(
                held.iter()
                    .filter(|organization| !organizations.contains(organization))
                    .map(|organization| format!("organization {organization}")),
            ),
        }
    }
    excess
}

/// Retires the old key: the person deletes it (or PostHog's leaked-key report kills it), then
/// PostHog is asked until it calls the old key invalid.
fn retire_old_key(
    session: &mut Session<'_>,
    provider: &PersonalKeyProvider,
    verifier: &Verifier,
    previous: Option<&Secret>,
) -> Result<(), RotateError> {
    if session.journal.is_done(Step::RetireOldKey, None) {
        return Ok(());
    }
    let old = session.started().old.clone();
    // The old value is kept in `VAR_PREVIOUS`; without it nothing can be probed and the
    // person's word has to do.
    let old_value = previous.filter(|value| Some(value.fingerprint()) == old.fingerprint);
    let status = old_value.map(|value| verifier.verify(value));
    if matches!(status, Some(KeyStatus::Invalid)) {
        session.begin(Step::RetireOldKey, Some(&old))?;
        return session.done(Step::RetireOldKey, Some(&old), None);
    }
    match old_value {
        Some(value) if provider.revoke_old => {
            session.begin(Step::RetireOldKey, Some(&old))?;
            let home = status.and_then(|status| status.region());
            let reports = provider
                .posthog
                .revoker()
                .revoke_leaked(value, home)
                .map_err(|source| RotateError::PostHog {
                    action: "report the old key to revoke_leaked_key",
                    source,
                })
                .map_err(|error| session.failed(Step::RetireOldKey, error))?;
            if let Some(failed) = reports.into_iter().find_map(|report| report.result.err()) {
                return Err(session.failed(
                    Step::RetireOldKey,
                    RotateError::PostHog {
                        action: "report the old key to revoke_leaked_key",
                        source: failed,
                    },
                ));
            }
        }
        _ => {
            session.interaction.show(&format!(
                "The new key is stored and verified. Now delete the old personal API key {}{} \
                 at {}: PostHog lets only its web app delete personal API keys.",
                old.mask,
                old.id
                    .as_ref()
                    .map(|id| format!(" (id {id})"))
                    .unwrap_or_default(),
                provider.posthog.page(KEYS_PAGE)
            ));
            let question = format!("Have you deleted the old key {}?", old.mask);
            let confirmed = session
                .interaction
                .confirm(&question)
                .map_err(|error| session.failed(Step::RetireOldKey, error.into()))?;
            if !confirmed {
                return Err(session.failed(
                    Step::RetireOldKey,
                    RotateError::OldKeyNotDeleted {
                        mask: old.mask.clone(),
                    },
                ));
            }
            session.begin(Step::RetireOldKey, Some(&old))?;
        }
    }
    if let Some(value) = old_value {
        wait_until_dead(provider, verifier, value, &old.mask)
            .map_err(|error| session.failed(Step::RetireOldKey, error))?;
    }
    session.done(Step::RetireOldKey, Some(&old), None)
}

/// Asks PostHog, at most `probe_attempts` times, until it calls `value` invalid.
fn wait_until_dead(
    provider: &PersonalKeyProvider,
    verifier: &Verifier,
    value: &Secret,
    mask: &str,
) -> Result<(), RotateError> {
    for attempt in 1..=provider.probe_attempts {
        if verifier.verify(value) == KeyStatus::Invalid {
            return Ok(());
        }
        if attempt < provider.probe_attempts {
            provider.sleeper.sleep(provider.probe_interval);
        }
    }
    Err(RotateError::OldKeyStillLive {
        mask: mask.to_owned(),
        attempts: provider.probe_attempts,
    })
}
