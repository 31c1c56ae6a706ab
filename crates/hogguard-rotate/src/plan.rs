//! The dry run: the steps a rotation would take, in words, and what would stop it, without
//! changing anything.

use std::fmt;

use crate::providers::personal::KEYS_PAGE;
use crate::request::{Provider, RotationRequest};

/// What [`Rotator::run`](crate::Rotator::run) would do for a request, step by step, and what
/// would stop it before it starts.
///
/// ```
/// use hogguard_rotate::{Provider, RotationRequest, Rotator, Store, WebhookSecretProvider};
///
/// let dir = tempfile::tempdir()?;
/// let request = RotationRequest::new(
///     "production", "webhook", "WEBHOOK_SECRET",
///     Provider::WebhookSecret(WebhookSecretProvider::new()),
///     Store::env_file(dir.path().join(".env")),
/// );
/// let mut plan = Rotator::new(dir.path().join(".hogguard/rotations")).plan(&request);
/// assert!(plan.steps()[2].starts_with("Generate a new whsec_ secret"));
/// // There is no env file, so there is no secret to rotate yet.
/// assert!(plan.missing()[0].starts_with("WEBHOOK_SECRET is not set"));
/// plan.add_missing("no terminal to confirm on: pass --yes");
/// assert!(!plan.can_run());
/// println!("{plan}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    steps: Vec<String>,
    missing: Vec<String>,
}

impl Plan {
    /// The steps, in order, for people.
    pub fn steps(&self) -> &[String] {
        &self.steps
    }

    /// What would stop a real run before it changes anything, each said as the error that
    /// run would stop with: no current key, a leftover `VAR_PREVIOUS`, a rotation of the
    /// credential that is already open, and whatever the caller [added](Self::add_missing).
    /// Empty when the rotation can run.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// Adds what the caller found missing for a real run: a setting it could not resolve (an
    /// admin key, a project id), or no terminal for an assisted rotation.
    pub fn add_missing(&mut self, problem: impl Into<String>) {
        self.missing.push(problem.into());
    }

    /// Whether nothing in [`missing`](Self::missing) stops a real run.
    pub fn can_run(&self) -> bool {
        self.missing.is_empty()
    }

    /// The steps that end a webhook secret's grace period: what a run does while the
    /// credential's open rotation has outlived it.
    pub(crate) fn finish_grace_period(request: &RotationRequest, rotation_id: &str) -> Plan {
        Plan {
            steps: vec![
                format!("Lock {}", request.credential_name()),
                format!(
                    "Finish the open rotation {rotation_id}, whose grace period is over: remove \
                     {} and close it (no new secret is made)",
                    request.previous_variable()
                ),
            ],
            missing: Vec::new(),
        }
    }

    /// The steps of a new rotation of `request`.
    pub(crate) fn of(request: &RotationRequest) -> Plan {
        let credential = request.credential_name();
        let variable = &request.variable;
        let previous = request.previous_variable();
        let store = request.store.describe();
        let mut steps = vec![format!(
            "Lock {credential} and check that no earlier rotation of it is open"
        )];
        if let Some(threshold) = request.if_older_than {
            steps.push(format!(
                "Stop unless the key is at least {} days old",
                threshold.as_secs() / 86_400
            ));
        }
        let verify = request.verify_command.as_ref().map(|command| {
            format!(
                "Run the verify command `{command}`; if it fails, stop with the old key still \
                 working and kept in {previous}"
            )
        });
        match &request.provider {
            Provider::ProjectSecretKey(provider) => {
                steps.push(format!(
                    "Read {variable} from {store} and find its project secret API key in {} (by \
                     {})",
                    provider
                        .project_id
                        .map_or_else(|| "the project".to_owned(), |id| format!("project {id}")),
                    provider
                        .key_id
                        .as_ref()
                        .map_or_else(|| "its mask".to_owned(), |id| format!("id {id}"))
                ));
                steps.push(
                    "Create a new project secret API key with the same scopes, labelled after \
                     the old one plus the rotation id"
                        .to_owned(),
                );
                steps.push("Check at PostHog that the new key works".to_owned());
                steps.push(format!(
                    "Write the new key to {variable} and keep the old one in {previous}"
                ));
                steps.extend(verify);
                steps.push("Delete the old project secret API key".to_owned());
                steps.push(format!("Remove {previous}"));
            }
            Provider::PersonalKey(provider) => {
                steps.push(format!(
                    "Read {variable} from {store} and ask PostHog which key this is (its id, \
                     scopes and projects)"
                ));
                steps.push(format!(
                    "Ask you to create a personal API key at {} with {}{}",
                    provider.posthog.page(KEYS_PAGE),
                    provider.allowed_scopes.as_ref().map_or_else(
                        || "the old key's scopes".to_owned(),
                        |scopes| format!("the scopes {}", scopes.join(", "))
                    ),
                    provider
                        .project_id
                        .map(|id| format!(", restricted to project {id}"))
                        .unwrap_or_default()
                ));
                steps.push(
                    "Ask PostHog whether the new key works, is not the old key and holds no \
                     broader scope"
                        .to_owned(),
                );
                steps.push(format!(
                    "Write the new key to {variable} and keep the old one in {previous}"
                ));
                steps.extend(verify);
                steps.push(if provider.revoke_old {
                    "Kill the old key through PostHog's revoke_leaked_key".to_owned()
                } else {
                    "Ask you to delete the old key in PostHog".to_owned()
                });
                steps.push(format!(
                    "Check PostHog until the old key no longer works (at most {} times)",
                    provider.probe_attempts
                ));
                steps.push(format!("Remove {previous}"));
            }
            Provider::WebhookSecret(provider) => {
                steps.push(format!("Read {variable} from {store}"));
                steps.push("Generate a new whsec_ secret".to_owned());
                steps.push(format!(
                    "Write it to {variable} and keep the old one in {previous}"
                ));
                steps.extend(verify);
                steps.push(format!(
                    "Accept both secrets for {} hours; give the sender the new one",
                    provider.grace.as_secs() / 3600
                ));
                steps.push(format!(
                    "After that, on the next run or with --finish, remove {previous}"
                ));
            }
            Provider::ProjectApiKey(_) => {
                steps.push(format!("Read {variable} from {store}"));
                steps.push(
                    "Explain when a reset is worth it: the token is public, and a reset stops \
                     the old one at once"
                        .to_owned(),
                );
                steps.push(
                    "Ask you to reset the token in PostHog's web app and paste the new one"
                        .to_owned(),
                );
                steps.push(format!("Write it to {variable}"));
                steps.extend(verify);
            }
        }
        Plan {
            steps,
            missing: Vec::new(),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {step}", index + 1)?;
        }
        if !self.missing.is_empty() {
            writeln!(f, "\nIt cannot run yet:")?;
            for problem in &self.missing {
                writeln!(f, "- {problem}")?;
            }
        }
        Ok(())
    }
}
