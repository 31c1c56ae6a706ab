//! Project secret API keys (`phs_`): create a new key beside the old one, check it, store it,
//! verify, delete the old key. Never `roll`: a roll kills the old value at once, and a lost
//! roll answer would leave no working key at all.

use hogguard_posthog::{Error as PostHogError, KeyStatus, ProjectSecretKeyInfo, WriterClient};
use hogguard_secret::Secret;

use crate::error::RotateError;
use crate::journal::{Closure, KeyRef, Started};
use crate::outcome::Outcome;
use crate::providers::undecided;
use crate::request::{ProjectSecretKeyProvider, RotationRequest};
use crate::session::{Holding, Session};
use crate::step::Step;

/// PostHog's `MAX_PROJECT_SECRET_API_KEYS_PER_TEAM`.
const KEY_LIMIT: usize = 50;
/// PostHog's `max_length` of a key label.
const LABEL_MAX_CHARS: usize = 40;
/// Between a label's base and the rotation id: ` rot-a1b2c3d4e5f6`.
const LABEL_MARK: &str = " rot-";
/// How often a create is tried when its answer is lost or its label is taken by an earlier
/// attempt whose answer was lost.
const CREATE_ATTEMPTS: u32 = 3;

/// Finds the old key at PostHog and fixes the new key's label and scopes.
pub(crate) fn prepare(
    provider: &ProjectSecretKeyProvider,
    request: &RotationRequest,
    current: &Secret,
    rotation_id: String,
) -> Result<Started, RotateError> {
    let client = provider.writer()?;
    let project_id = provider.project()?;
    let keys = list_keys(&client, project_id)?;
    let old = find_key(&keys, project_id, provider, current)?;
    if keys.len() >= KEY_LIMIT {
        return Err(RotateError::ProjectKeyLimit {
            project_id,
            limit: KEY_LIMIT,
        });
    }
    Ok(Started {
        new_label: Some(new_label(&old.label, &rotation_id)),
        project_id: Some(project_id),
        scopes: old.scopes.clone(),
        ..Started::new(request, current, Some(old.id.clone()), rotation_id)
    })
}

/// The PostHog metadata of the key whose value is `current`.
pub(crate) fn find_current_key(
    provider: &ProjectSecretKeyProvider,
    current: &Secret,
) -> Result<ProjectSecretKeyInfo, RotateError> {
    let client = provider.writer()?;
    let project_id = provider.project()?;
    let keys = list_keys(&client, project_id)?;
    find_key(&keys, project_id, provider, current).cloned()
}

/// PostHog shows only a key's mask, so the stored value is matched by mask, or by the id the
/// request names (whose mask must then agree) among `keys` of `project_id`.
fn find_key<'k>(
    keys: &'k [ProjectSecretKeyInfo],
    project_id: u64,
    provider: &ProjectSecretKeyProvider,
    current: &Secret,
) -> Result<&'k ProjectSecretKeyInfo, RotateError> {
    let mask = current.mask();
    let matching: Vec<&ProjectSecretKeyInfo> = keys
        .iter()
        .filter(|key| key.mask_value.as_deref() == Some(mask.as_str()))
        .filter(|key| provider.key_id.as_ref().is_none_or(|id| *id == key.id))
        .collect();
    match matching.as_slice() {
        [key] => Ok(key),
        [] => Err(RotateError::OldKeyNotFound {
            project_id,
            mask,
            key_id: provider.key_id.clone(),
        }),
        several => Err(RotateError::OldKeyAmbiguous {
            project_id,
            mask,
            count: several.len(),
        }),
    }
}

/// `<old label without an earlier rotation mark> rot-<rotation id>`, within PostHog's 40
/// characters. Labels are unique per project, so the label names this rotation's key.
fn new_label(old_label: &str, rotation_id: &str) -> String {
    let base = match old_label.rsplit_once(LABEL_MARK) {
        Some((base, id)) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) => base,
        _ => old_label,
    };
    let base = match base.trim() {
        "" => "hogguard",
        base => base,
    };
    let suffix = format!("{LABEL_MARK}{rotation_id}");
    let room = LABEL_MAX_CHARS.saturating_sub(suffix.chars().count());
    let base: String = base.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

fn list_keys(
    client: &WriterClient,
    project_id: u64,
) -> Result<Vec<ProjectSecretKeyInfo>, RotateError> {
    client
        .project_secret_keys(project_id)
        .map_err(|source| RotateError::PostHog {
            action: "list the project's secret API keys",
            source,
        })
}

fn project_id(session: &Session<'_>) -> u64 {
    session.started().project_id.unwrap_or_default()
}

fn label(session: &Session<'_>) -> String {
    session.started().new_label.clone().unwrap_or_default()
}

/// Runs the rotation from wherever it stands until it completes.
///
/// The store decides the phase. While it holds the old key, any key this rotation made is
/// unusable unless its value is still in memory (PostHog shows a value only once), so such
/// keys are deleted and a new one is created. Once the store holds the new key, what remains
/// is to verify, delete the old key (a 404 counts as done) and empty `VAR_PREVIOUS`.
pub(crate) fn drive(
    session: &mut Session<'_>,
    provider: &ProjectSecretKeyProvider,
) -> Result<Outcome, RotateError> {
    let client = provider.writer()?;
    let mut unstored: Option<(KeyRef, Secret)> = None;
    loop {
        let view = session.store_view()?;
        match session.classify(view.current)? {
            Holding::Old(old) => {
                if let Some((key, value)) = unstored.take() {
                    session.store_new_key(&key, &value, Some(&old))?;
                    continue;
                }
                delete_unstored_keys(session, &client)?;
                let (key, value) = create_key(session, &client)?;
                check_new_key(session, provider, &client, &key, &value)?;
                unstored = Some((key, value));
            }
            Holding::New(new) => {
                session.run_verify_command(&new)?;
                retire_old_key(session, &client, &new)?;
                session.drop_previous_key(view.previous.is_some())?;
                return session.close(Closure::Completed, Some(new));
            }
        }
    }
}

/// Returns the store to the old key and deletes the key this rotation made, while the old key
/// still exists.
pub(crate) fn abort(
    session: &mut Session<'_>,
    provider: &ProjectSecretKeyProvider,
) -> Result<Outcome, RotateError> {
    let client = provider.writer()?;
    let view = session.store_view()?;
    match session.classify(view.current)? {
        Holding::Old(_) => {
            session.start_abort()?;
            delete_unstored_keys(session, &client)?;
            session.drop_previous_key(view.previous.is_some())?;
        }
        Holding::New(new) => {
            let keys = list_keys(&client, project_id(session))?;
            let old = session.started().old.clone();
            if !keys.iter().any(|key| Some(&key.id) == old.id.as_ref()) {
                return Err(RotateError::CannotAbort {
                    reason: format!(
                        "the old key {} is already deleted at PostHog; --resume completes the \
                         rotation with {}",
                        old.mask, new.mask
                    ),
                });
            }
            let Some(previous) = view
                .previous
                .filter(|previous| Some(previous.fingerprint()) == old.fingerprint)
            else {
                return Err(RotateError::CannotAbort {
                    reason: format!(
                        "{} no longer holds the old key; --resume completes the rotation",
                        session.request.previous_variable()
                    ),
                });
            };
            session.start_abort()?;
            session.restore_old_key(&previous)?;
            // The new key is no longer stored anywhere, so it goes like any unstored key.
            delete_unstored_keys(session, &client)?;
        }
    }
    session.close(Closure::Aborted, None)
}

/// Creates the new key, cleaning up after attempts whose answer was lost.
fn create_key(
    session: &mut Session<'_>,
    client: &WriterClient,
) -> Result<(KeyRef, Secret), RotateError> {
    let project_id = project_id(session);
    let label = label(session);
    let scopes = session.started().scopes.clone();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let mut attempt = 1;
    loop {
        session.begin(Step::CreateKey, None)?;
        match client.create_project_secret_key(project_id, &label, &scopes) {
            Ok(created) => {
                let key = KeyRef::of(&created.value, Some(created.info.id));
                session.done(Step::CreateKey, Some(&key), None)?;
                return Ok((key, created.value));
            }
            Err(error) => {
                let label_taken = matches!(error, PostHogError::Validation { .. });
                let retry = error.is_transient() || label_taken;
                let error = session.failed(
                    Step::CreateKey,
                    RotateError::PostHog {
                        action: "create the new project secret API key",
                        source: error,
                    },
                );
                if !retry || attempt == CREATE_ATTEMPTS {
                    return Err(error);
                }
                // The key may exist with its value lost in the failed answer, holding the label.
                let deleted = delete_unstored_keys(session, client)?;
                if label_taken && deleted == 0 {
                    return Err(error);
                }
                attempt += 1;
            }
        }
    }
}

/// Checks at PostHog that the new key works; deletes it at once when PostHog refuses it.
fn check_new_key(
    session: &mut Session<'_>,
    provider: &ProjectSecretKeyProvider,
    client: &WriterClient,
    key: &KeyRef,
    value: &Secret,
) -> Result<(), RotateError> {
    session.begin(Step::CheckNewKey, Some(key))?;
    match provider.posthog.verifier().verify(value) {
        KeyStatus::Live(_) => session.done(Step::CheckNewKey, Some(key), None),
        KeyStatus::Invalid => {
            let error = session.failed(
                Step::CheckNewKey,
                RotateError::NewKeyNotLive {
                    mask: key.mask.clone(),
                },
            );
            delete_unstored_keys(session, client)?;
            Err(error)
        }
        other => Err(session.failed(Step::CheckNewKey, undecided(other, key.mask.clone()))),
    }
}

/// Deletes the keys carrying this rotation's label: keys whose value never reached the store
/// (or, on abort, left it). Returns how many were deleted.
fn delete_unstored_keys(
    session: &mut Session<'_>,
    client: &WriterClient,
) -> Result<usize, RotateError> {
    let project_id = project_id(session);
    let label = label(session);
    let keys = list_keys(client, project_id)?;
    let unstored: Vec<&ProjectSecretKeyInfo> =
        keys.iter().filter(|key| key.label == label).collect();
    for key in &unstored {
        // The journal knows the fingerprint of keys whose create answer arrived.
        let known = session
            .journal
            .done_keys(Step::CreateKey)
            .find(|created| created.id.as_deref() == Some(key.id.as_str()))
            .cloned();
        let reference = known.unwrap_or_else(|| KeyRef {
            id: Some(key.id.clone()),
            mask: key.mask_value.clone().unwrap_or_default(),
            fingerprint: None,
        });
        session.begin(Step::DeleteUnstoredKey, Some(&reference))?;
        delete_key(
            client,
            project_id,
            &key.id,
            "delete a key that was never stored",
        )
        .map_err(|error| session.failed(Step::DeleteUnstoredKey, error))?;
        session.done(Step::DeleteUnstoredKey, Some(&reference), None)?;
    }
    Ok(unstored.len())
}

/// Deletes the old key once the stored new key is confirmed to exist at PostHog.
fn retire_old_key(
    session: &mut Session<'_>,
    client: &WriterClient,
    new: &KeyRef,
) -> Result<(), RotateError> {
    let project_id = project_id(session);
    let keys = list_keys(client, project_id)?;
    if !keys.iter().any(|key| Some(&key.id) == new.id.as_ref()) {
        return Err(RotateError::NewKeyMissing {
            mask: new.mask.clone(),
        });
    }
    let old = session.started().old.clone();
    let old_exists = keys.iter().any(|key| Some(&key.id) == old.id.as_ref());
    if !old_exists && session.journal.is_done(Step::RetireOldKey, None) {
        return Ok(());
    }
    session.begin(Step::RetireOldKey, Some(&old))?;
    if old_exists {
        let old_id = old.id.clone().unwrap_or_default();
        delete_key(
            client,
            project_id,
            &old_id,
            "delete the old project secret API key",
        )
        .map_err(|error| session.failed(Step::RetireOldKey, error))?;
    }
    session.done(Step::RetireOldKey, Some(&old), None)
}

/// Deletes a key; a 404 means an earlier attempt (whose answer was lost) already did.
fn delete_key(
    client: &WriterClient,
    project_id: u64,
    key_id: &str,
    action: &'static str,
) -> Result<(), RotateError> {
    match client.delete_project_secret_key(project_id, key_id) {
        Ok(()) | Err(PostHogError::NotFound { .. }) => Ok(()),
        Err(source) => Err(RotateError::PostHog { action, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_carry_the_rotation_and_fit_posthog() {
        assert_eq!(new_label("flags", "a1b2c3d4e5f6"), "flags rot-a1b2c3d4e5f6");
        assert_eq!(
            new_label("flags rot-a1b2c3d4e5f6", "0123456789ab"),
            "flags rot-0123456789ab"
        );
        assert_eq!(new_label("  ", "0123456789ab"), "hogguard rot-0123456789ab");
        let long = new_label(&"é".repeat(60), "0123456789ab");
        assert_eq!(long.chars().count(), LABEL_MAX_CHARS);
        assert!(long.ends_with(" rot-0123456789ab"));
        assert_eq!(
            new_label("key rot-not-an-id", "0123456789ab"),
            "key rot-not-an-id rot-0123456789ab"
        );
    }
}
