//! Webhook signing secrets (`whsec_`): a new secret becomes primary in `VAR` while the old one
//! stays accepted from `VAR_PREVIOUS` for a grace period, so deliveries signed with either
//! verify while the sender switches over.

use hogguard_secret::Secret;

use crate::audit::AuditResult;
use crate::error::RotateError;
use crate::journal::{Closure, KeyRef, Started};
use crate::outcome::Outcome;
use crate::request::{RotationRequest, WebhookSecretProvider};
use crate::session::{Holding, Session};
use crate::step::Step;
use crate::time::{format_utc, from_unix_seconds};

pub(crate) fn prepare(
    provider: &WebhookSecretProvider,
    request: &RotationRequest,
    current: &Secret,
    rotation_id: String,
) -> Started {
    Started {
        grace_seconds: Some(provider.grace.as_secs()),
        ..Started::new(request, current, None, rotation_id)
    }
}

/// Runs the rotation from wherever it stands: generate and store the new secret (a secret
/// generated but not stored is simply forgotten: nothing outside knows it), verify, start the
/// grace period, and once it is over (or `finish_now`) drop the old secret.
pub(crate) fn drive(
    session: &mut Session<'_>,
    provider: &WebhookSecretProvider,
    finish_now: bool,
) -> Result<Outcome, RotateError> {
    loop {
        let view = session.store_view()?;
        match session.classify(view.current)? {
            Holding::Old(old) => {
                session.begin(Step::ObtainNewKey, None)?;
                let secret = hogguard_webhook::generate_secret().map_err(|source| {
                    session.failed(Step::ObtainNewKey, RotateError::Random { source })
                })?;
                let value = Secret::new(secret.expose());
                let key = KeyRef::of(&value, None);
                session.done(Step::ObtainNewKey, Some(&key), None)?;
                session.store_new_key(&key, &value, Some(&old))?;
            }
            Holding::New(new) => {
                session.run_verify_command(&new)?;
                let until = match session.journal.grace_until() {
                    Some(until) => until,
                    None => start_grace_period(session, provider, &new)?,
                };
                // Once dropping the old secret began, it is finished whatever the clock says.
                let finishing = session.journal.intended(Step::DropPreviousKey);
                if finish_now || finishing || until <= session.now() {
                    session.drop_previous_key(view.previous.is_some())?;
                    return session.close(Closure::Completed, Some(new));
                }
                session.record(
                    "key.rotate.grace_period",
                    AuditResult::Success,
                    &[("until", format_utc(from_unix_seconds(until)))],
                )?;
                return Ok(Outcome::GracePeriod {
                    rotation_id: session.started().rotation_id.clone(),
                    new,
                    until: from_unix_seconds(until),
                });
            }
        }
    }
}

fn start_grace_period(
    session: &mut Session<'_>,
    provider: &WebhookSecretProvider,
    new: &KeyRef,
) -> Result<u64, RotateError> {
    let grace = session
        .started()
        .grace_seconds
        .unwrap_or(provider.grace.as_secs());
    session.begin(Step::StartGracePeriod, Some(new))?;
    let until = session.now().saturating_add(grace);
    let request = session.request;
    session.interaction.show(&format!(
        "{} now holds the new secret {} and {} the old one; receivers that read both accept \
         either until {}. Give the sender (e.g. the PostHog destination's signing secret) the \
         new secret before then.",
        request.variable,
        new.mask,
        request.previous_variable(),
        format_utc(from_unix_seconds(until))
    ));
    session.done(Step::StartGracePeriod, Some(new), Some(until))?;
    Ok(until)
}

/// Puts the old secret back in `VAR` and empties `VAR_PREVIOUS`.
pub(crate) fn abort(session: &mut Session<'_>) -> Result<Outcome, RotateError> {
    let view = session.store_view()?;
    match session.classify(view.current)? {
        Holding::Old(_) => {
            session.start_abort()?;
            session.drop_previous_key(view.previous.is_some())?;
        }
        Holding::New(_) => {
            let old = session.started().old.clone();
            let Some(previous) = view
                .previous
                .filter(|previous| Some(previous.fingerprint()) == old.fingerprint)
            else {
                return Err(RotateError::CannotAbort {
                    reason: format!(
                        "{} no longer holds the old secret",
                        session.request.previous_variable()
                    ),
                });
            };
            session.start_abort()?;
            session.restore_old_key(&previous)?;
            session.interaction.show(
                "The old webhook secret is primary again; a sender already switched to the new \
                 secret must be switched back.",
            );
        }
    }
    session.close(Closure::Aborted, None)
}
