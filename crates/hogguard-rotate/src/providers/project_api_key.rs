//! Project API keys (`phc_`): public by design (they ship in every page that loads
//! posthog-js), so rotating one is a judgement call and a coordinated deploy, not a routine.
//! hogguard explains, the person resets the token in PostHog, and hogguard stores the new one.

use hogguard_secret::{CredentialKind, Secret};

use crate::error::RotateError;
use crate::journal::{Closure, KeyRef, Started};
use crate::outcome::Outcome;
use crate::request::{PostHogAccess, ProjectApiKeyProvider, RotationRequest};
use crate::session::{Holding, Session};
use crate::step::Step;

/// When resetting a project API key is worth it, and how it goes.
pub fn project_api_key_guidance() -> &'static str {
    "A project API key (phc_) is public by design: it ships in every page and app that loads \
     PostHog, and it can only send events, not read data. A leak alone is not worth a reset. \
     Reset it when someone abuses it, e.g. floods the project with junk or spoofed events, or \
     when you move ingestion to a new project setup on purpose.\n\
     The reset (PATCH /api/projects/{id}/reset_token/) is allowed only to a project admin \
     logged in to PostHog's web app, not to API keys, and the old token stops working at once: \
     there is no overlap. Treat it as a coordinated deploy: have the new token ready to ship \
     everywhere the old one is used (web snippet, mobile apps, servers), reset, then deploy \
     straight away; events sent with the old token until then are lost."
}

fn settings_page(posthog: &PostHogAccess, project_id: Option<u64>) -> String {
    match project_id {
        Some(id) => posthog.page(&format!("/project/{id}/settings/project")),
        None => posthog.page("/settings/project"),
    }
}

pub(crate) fn prepare(
    provider: &ProjectApiKeyProvider,
    request: &RotationRequest,
    current: &Secret,
    rotation_id: String,
) -> Started {
    Started {
        project_id: provider.project_id,
        ..Started::new(request, current, None, rotation_id)
    }
}

/// Shows the guidance, reads the new token, stores it (no previous slot: the old token is
/// dead once reset) and runs the verify command.
pub(crate) fn drive(
    session: &mut Session<'_>,
    provider: &ProjectApiKeyProvider,
) -> Result<Outcome, RotateError> {
    let mut unstored: Option<(KeyRef, Secret)> = None;
    loop {
        let view = session.store_view()?;
        match session.classify(view.current)? {
            Holding::Old(_) => {
                if let Some((key, value)) = unstored.take() {
                    session.store_new_key(&key, &value, None)?;
                    continue;
                }
                unstored = Some(obtain_new_token(session, provider)?);
            }
            Holding::New(new) => {
                session.run_verify_command(&new)?;
                return session.close(Closure::Completed, Some(new));
            }
        }
    }
}

fn obtain_new_token(
    session: &mut Session<'_>,
    provider: &ProjectApiKeyProvider,
) -> Result<(KeyRef, Secret), RotateError> {
    session.begin(Step::ObtainNewKey, None)?;
    session.interaction.show(project_api_key_guidance());
    session.interaction.show(&format!(
        "To go ahead, reset the token at {} (\"Reset project API key\"), then paste the new one.",
        settings_page(&provider.posthog, session.started().project_id)
    ));
    let prompt = format!(
        "New project API key for {}",
        session.request.credential_name()
    );
    let value = session
        .interaction
        .read_secret(&prompt)
        .map_err(|error| session.failed(Step::ObtainNewKey, error.into()))?;
    let refused = |reason: &str| RotateError::NewKeyRefused {
        reason: reason.to_owned(),
    };
    if CredentialKind::from_value(value.expose()) != Some(CredentialKind::ProjectApiKey) {
        return Err(session.failed(
            Step::ObtainNewKey,
            refused("it is not a project API key (phc_...)"),
        ));
    }
    if Some(value.fingerprint()) == session.started().old.fingerprint {
        return Err(session.failed(
            Step::ObtainNewKey,
            refused("it is the token being replaced"),
        ));
    }
    let key = KeyRef::of(&value, None);
    session.done(Step::ObtainNewKey, Some(&key), None)?;
    Ok((key, value))
}

/// Nothing was stored yet: close. Once the new token is stored the old one is already dead.
pub(crate) fn abort(session: &mut Session<'_>) -> Result<Outcome, RotateError> {
    let view = session.store_view()?;
    match session.classify(view.current)? {
        Holding::Old(_) => {
            session.start_abort()?;
            session.close(Closure::Aborted, None)
        }
        Holding::New(new) => Err(RotateError::CannotAbort {
            reason: format!(
                "the old project API key stopped working when it was reset; {} is stored, so \
                 --resume completes the rotation",
                new.mask
            ),
        }),
    }
}
