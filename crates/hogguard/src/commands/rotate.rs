//! `hogguard rotate ENV CREDENTIAL`: crash-safe rotation through `hogguard-rotate`, with the
//! terminal as the person's side of assisted rotations and the audit log as the trail.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hogguard_posthog::ClientConfig;
use hogguard_rotate::{
    AuditResult, AuditSink, AuditSinkError, Interaction, InteractionError, PersonalKeyProvider,
    PostHogAccess, ProjectApiKeyProvider, ProjectSecretKeyProvider, Provider, RotationRequest,
    Rotator, Store, WebhookSecretProvider,
};
use hogguard_secret::{CredentialKind, Secret};

use crate::audit::Recorder;
use crate::cli::RotateArgs;
use crate::printer::Printer;
use crate::settings::{Scope, Settings};
use crate::{Status, age, environments};

pub(crate) fn run(args: RotateArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let config = &settings.config;
    let request = request(&args, settings)?;
    let rotator = Rotator::new(hogguard_rotate::ROTATIONS_DIR);
    if args.dry_run {
        printer.out(&format!("{}\n", rotator.plan(&request)))?;
        return Ok(Status::Clean);
    }
    let recorder = Recorder::open(config, true, printer)?;
    let sink = AuditLogSink {
        recorder: &recorder,
    };
    let mut terminal = Terminal {
        stdin: args.stdin,
        yes: args.yes,
        printer,
    };
    let outcome = if args.resume {
        rotator.resume(&request, &mut terminal, &sink)
    } else if args.abort {
        rotator.abort(&request, &mut terminal, &sink)
    } else if args.finish {
        rotator.finish(&request, &mut terminal, &sink)
    } else {
        rotator.run(&request, &mut terminal, &sink)
    };
    recorder.close()?;
    match outcome {
        Ok(outcome) => {
            printer.out(&format!("{outcome}\n"))?;
            Ok(Status::Clean)
        }
        // A check that failed (the verify command, a refused key) is a finding, not a crash.
        Err(e) if e.exit_code() == 1 => {
            printer.error(&e.into());
            Ok(Status::Findings)
        }
        Err(e) => Err(e.into()),
    }
}

fn request(args: &RotateArgs, settings: &Settings) -> Result<RotationRequest> {
    let config = &settings.config;
    let environment = config
        .environments
        .get(&args.environment)
        .with_context(|| format!("no environment `{}` in the configuration", args.environment))?;
    let variable = environment
        .credentials
        .get(&args.credential)
        .with_context(|| {
            let known: Vec<&str> = environment.credentials.keys().map(String::as_str).collect();
            format!(
                "no credential `{}` in environment `{}` (known: {})",
                args.credential,
                args.environment,
                known.join(", ")
            )
        })?;
    let store = match (&environment.store, &environment.env_file) {
        (Some(store), _) => Store::command(store.write.clone(), store.read.clone()),
        (None, Some(path)) => Store::env_file(path),
        (None, None) => bail!(
            "environment `{}` has neither env_file nor store: hogguard needs to know where to write the new key",
            args.environment
        ),
    };
    let current = environments::credentials(config, Some(&args.environment))?
        .into_iter()
        .find(|c| c.name == args.credential)
        .and_then(|c| c.kind());
    let access = || -> Result<PostHogAccess> {
        Ok(PostHogAccess::new(
            config.posthog.hosts()?,
            ClientConfig::default(),
        ))
    };
    let kind = current.unwrap_or_else(|| kind_by_name(&args.credential));
    let provider = match kind {
        CredentialKind::ProjectSecretApiKey => {
            let Some(var) = &config.posthog.admin_key else {
                bail!(
                    "rotating a phs_ key needs [posthog] admin_key: the variable holding a personal API key with project:write"
                );
            };
            let admin = settings.require_variable(
                var,
                Scope::Environment(&args.environment),
                "[posthog] admin_key names it",
            )?;
            let project = config
                .posthog
                .project_id
                .context("rotating a phs_ key needs [posthog] project_id")?;
            Provider::ProjectSecretKey(ProjectSecretKeyProvider::new(access()?, admin, project))
        }
        CredentialKind::PersonalApiKey | CredentialKind::LegacyPersonalApiKey => {
            let mut provider = PersonalKeyProvider::new(access()?).revoke_old(args.revoke_old);
            if let Some(scopes) = &environment.allowed_scopes {
                provider = provider.allowed_scopes(scopes.clone());
            }
            Provider::PersonalKey(provider)
        }
        CredentialKind::WebhookSecret => {
            let grace = age::parse(&args.grace).context("--grace")?;
            Provider::WebhookSecret(WebhookSecretProvider::new().grace(Duration::from_secs(grace)))
        }
        CredentialKind::ProjectApiKey => {
            let mut provider = ProjectApiKeyProvider::new(access()?);
            if let Some(project) = config.posthog.project_id {
                provider = provider.project_id(project);
            }
            Provider::ProjectApiKey(provider)
        }
        other => bail!("hogguard cannot rotate a {other} credential"),
    };
    let mut request = RotationRequest::new(
        &args.environment,
        &args.credential,
        variable,
        provider,
        store,
    );
    if let Some(command) = &environment.verify_command {
        request = request.verify_command(command);
    }
    if let Some(threshold) = &args.if_older_than {
        request = request.if_older_than(Duration::from_secs(
            age::parse(threshold).context("--if-older-than")?,
        ));
    }
    Ok(request)
}

/// The kind a credential's name suggests, for a store that holds no value yet.
fn kind_by_name(name: &str) -> CredentialKind {
    if name.contains("webhook") {
        CredentialKind::WebhookSecret
    } else if name.contains("personal") {
        CredentialKind::PersonalApiKey
    } else if name.contains("secret") {
        CredentialKind::ProjectSecretApiKey
    } else {
        CredentialKind::ProjectApiKey
    }
}

/// The person's side of an assisted rotation: messages on standard error, new keys read
/// without echo (or from standard input with `--stdin`).
struct Terminal<'p> {
    stdin: bool,
    yes: bool,
    printer: &'p Printer,
}

impl Interaction for Terminal<'_> {
    fn show(&mut self, message: &str) {
        self.printer.note(message);
    }

    fn read_secret(&mut self, prompt: &str) -> Result<Secret, InteractionError> {
        let line = if self.stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(InteractionError::Io)?;
            line
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password(format!("{prompt} ")).map_err(InteractionError::Io)?
        } else {
            return Err(no_terminal(
                "no terminal to read the new key from: pass it on standard input with --stdin",
            ));
        };
        Ok(Secret::new(line.trim().to_owned()))
    }

    fn confirm(&mut self, question: &str) -> Result<bool, InteractionError> {
        if self.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(no_terminal("no terminal to confirm on: pass --yes"));
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{question} [y/N] ");
        let _ = stderr.flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(InteractionError::Io)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
    }
}

fn no_terminal(message: &str) -> InteractionError {
    InteractionError::Io(std::io::Error::other(message.to_owned()))
}

/// Every rotation step goes to the audit log; with `[audit] required = true` a step whose
/// entry cannot be written is not taken.
struct AuditLogSink<'r, 'p> {
    recorder: &'r Recorder<'p>,
}

impl AuditSink for AuditLogSink<'_, '_> {
    fn record(
        &self,
        action: &str,
        resource: &str,
        result: AuditResult,
        metadata: &[(&str, String)],
    ) -> Result<(), AuditSinkError> {
        let metadata: Vec<(&str, serde_json::Value)> = metadata
            .iter()
            .map(|(k, v)| (*k, v.clone().into()))
            .collect();
        self.recorder
            .record(action, resource, result == AuditResult::Success, &metadata)
            .map_err(|e| AuditSinkError::new(format!("{e:#}")))
    }
}
