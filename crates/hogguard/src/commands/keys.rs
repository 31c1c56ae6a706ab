//! `hogguard keys`: the inventory of configured credentials per environment, what PostHog says
//! of each, and how each fits its environment's policy.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use hogguard_posthog::{
    ClientConfig, Evidence, KeyStatus, ProjectSecretKeyInfo, Verifier, WriterClient,
};
use hogguard_secret::CredentialKind;
use serde::Serialize;

use crate::audit::Recorder;
use crate::cli::{KeysArgs, KeysFormat};
use crate::config::Config;
use crate::environments::{self, Credential};
use crate::interrupt::{self, Deferral};
use crate::printer::{Printer, style};
use crate::settings::{Scope, Settings};
use crate::verification::{deployment, is_verifiable};
use crate::{Status, age, policy};

/// One credential as the report shows it.
#[derive(Debug, Serialize)]
pub(crate) struct KeyReport {
    environment: String,
    name: String,
    variable: String,
    source: String,
    kind: Option<&'static str>,
    masked: Option<String>,
    /// `live`, `invalid`, `unknown`, `public` (phc_, never probed), `unverifiable` or `missing`.
    status: &'static str,
    reason: Option<String>,
    region: Option<String>,
    scopes: Option<Vec<String>>,
    scoped_projects: Option<Vec<u64>>,
    scoped_organizations: Option<Vec<String>>,
    created_at: Option<String>,
    last_used_at: Option<String>,
    last_rolled_at: Option<String>,
    age_days: Option<u64>,
    /// Why a live key's age is not known (and so cannot be judged against max_key_age).
    age_unknown: Option<String>,
    pub(crate) verdicts: Vec<Verdict>,
    /// What deserves attention without breaking the policy (never changes the exit code).
    warnings: Vec<Verdict>,
}

impl KeyReport {
    /// `environment.credential`, for people.
    pub(crate) fn place(&self) -> String {
        format!("{}.{}", self.environment, self.name)
    }

    /// `live`, `invalid`, `unknown`, `public`, `unverifiable` or `missing`.
    pub(crate) fn status(&self) -> &'static str {
        self.status
    }

    /// What PostHog could not tell, when it could not be asked (status `unknown`).
    pub(crate) fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The environment it belongs to.
    pub(crate) fn environment(&self) -> &str {
        &self.environment
    }

    /// Why a live key's age is not known.
    pub(crate) fn age_unknown(&self) -> Option<&str> {
        self.age_unknown.as_deref()
    }

    /// Its name in `[environments.NAME.credentials]`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its value's mask, when it has a value.
    pub(crate) fn masked(&self) -> Option<&str> {
        self.masked.as_deref()
    }

    /// The scopes PostHog says it holds, when PostHog told.
    pub(crate) fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }
}

/// A way a credential breaks its environment's policy.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    /// Stable identifier: `missing-value`, `invalid-key`, `scope-not-allowed`,
    /// `wildcard-scope`, `not-project-scoped`, `too-old`, `shared-between-environments`.
    pub(crate) id: &'static str,
    /// What is wrong, for people.
    pub(crate) message: String,
}

pub(crate) fn run(args: KeysArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let reports = inventory(settings, args.env.as_deref(), printer)?;
    let failed = reports.iter().any(|r| !r.verdicts.is_empty());
    let text = match args.format {
        KeysFormat::Json => {
            let document = serde_json::json!({ "version": 1, "credentials": reports });
            serde_json::to_string_pretty(&document)? + "\n"
        }
        KeysFormat::Human => human(&reports),
    };
    printer.out(&text)?;
    Ok(Status::of_results(failed))
}

/// Reads, verifies and judges every configured credential (of `only`, when given); every key
/// asked of PostHog leaves an audit entry, Ctrl-C or not: an interrupt while PostHog is asked
/// lets the probes finish and be recorded, and the caller then ends with
/// [`Status::Interrupted`].
pub(crate) fn inventory(
    settings: &Settings,
    only: Option<&str>,
    printer: &Printer,
) -> Result<Vec<KeyReport>> {
    let config = &settings.config;
    interrupt::install();
    let credentials = environments::credentials(settings, only)?;
    let probed: Vec<usize> = (0..credentials.len())
        .filter(|&i| credentials[i].kind().is_some_and(is_verifiable))
        .collect();
    // From the first probe to the last audit entry.
    let _audited = Deferral::start();
    let statuses = if probed.is_empty() {
        Vec::new()
    } else {
        let secrets: Vec<_> = probed
            .iter()
            .filter_map(|&i| credentials[i].value.clone())
            .collect();
        Verifier::new(deployment(config)?, &ClientConfig::default()).verify_all(&secrets)
    };
    let mut status_of: BTreeMap<usize, KeyStatus> = probed.into_iter().zip(statuses).collect();
    let now = jiff::Timestamp::now();
    let mut reports: Vec<KeyReport> = credentials
        .iter()
        .enumerate()
        .map(|(i, credential)| report(credential, status_of.remove(&i), now))
        .collect();
    learn_secret_key_ages(settings, &mut reports, &credentials, now);
    for report in &mut reports {
        if report.status == "live" && report.age_days.is_none() && report.age_unknown.is_none() {
            report.age_unknown = Some("PostHog does not show this credential's age".to_owned());
        }
        judge_policy(report, config);
    }
    judge_sharing(&credentials, &mut reports);
    let recorder = Recorder::open(settings, false, printer)?;
    for report in reports
        .iter()
        .filter(|r| matches!(r.status, "live" | "invalid" | "unknown"))
    {
        let verdicts: Vec<&str> = report.verdicts.iter().map(|v| v.id).collect();
        recorder.record(
            "key.checked",
            &report.place(),
            report.status != "unknown",
            &[
                ("status", report.status.into()),
                ("masked", report.masked.clone().into()),
                ("verdicts", verdicts.into()),
            ],
        )?;
    }
    recorder.close()?;
    Ok(reports)
}

/// What is known of `credential` from its value and PostHog's answer; judged later.
fn report(credential: &Credential, status: Option<KeyStatus>, now: jiff::Timestamp) -> KeyReport {
    let kind = credential.kind();
    let mut report = KeyReport {
        environment: credential.environment.clone(),
        name: credential.name.clone(),
        variable: credential.variable.clone(),
        source: credential.source.clone(),
        kind: kind.map(CredentialKind::as_str),
        masked: credential.value.as_ref().map(|v| v.mask()),
        status: "unverifiable",
        reason: None,
        region: None,
        scopes: None,
        scoped_projects: None,
        scoped_organizations: None,
        created_at: None,
        last_used_at: None,
        last_rolled_at: None,
        age_days: None,
        age_unknown: None,
        verdicts: Vec::new(),
        warnings: Vec::new(),
    };
    if credential.value.is_none() {
        report.status = "missing";
        report.verdicts.push(Verdict {
            id: "missing-value",
            message: format!(
                "{} has no value in {}",
                credential.variable, credential.source
            ),
        });
        return report;
    }
    if kind == Some(CredentialKind::ProjectApiKey) {
        report.status = "public";
        return report;
    }
    match status {
        Some(KeyStatus::Live(live)) => {
            report.status = "live";
            report.region = live.region.map(|r| r.as_str().to_owned());
            if let Evidence::PersonalKey(info) = &live.evidence {
                report.scopes = Some(info.scopes.clone());
                report.scoped_projects = info.scoped_teams.clone();
                report.scoped_organizations = info.scoped_organizations.clone();
                report.created_at = Some(info.created_at.clone());
                report.last_used_at = info.last_used_at.clone();
                report.last_rolled_at = info.last_rolled_at.clone();
                report.age_days = age_days(&info.created_at, info.last_rolled_at.as_deref(), now);
            }
        }
        Some(KeyStatus::Invalid) => {
            report.status = "invalid";
            report.verdicts.push(Verdict {
                id: "invalid-key",
                message: "PostHog does not accept this key: replace it".to_owned(),
            });
        }
        Some(KeyStatus::Unknown { reason }) => {
            report.status = "unknown";
            report.reason = Some(reason);
        }
        Some(_) | None => {}
    }
    report
}

/// A `phs_` key does not describe itself: its age (and scopes) come from the project's list of
/// secret API keys, read with `[posthog] admin_key`, matched by PostHog's mask of the value.
fn learn_secret_key_ages(
    settings: &Settings,
    reports: &mut [KeyReport],
    credentials: &[Credential],
    now: jiff::Timestamp,
) {
    let pending: Vec<usize> = (0..reports.len())
        .filter(|&i| {
            reports[i].status == "live"
                && reports[i].kind == Some(CredentialKind::ProjectSecretApiKey.as_str())
        })
        .collect();
    if pending.is_empty() {
        return;
    }
    let listed = list_project_secret_keys(settings);
    for i in pending {
        let report = &mut reports[i];
        let keys = match &listed {
            Ok(keys) => keys,
            Err(reason) => {
                report.age_unknown = Some(reason.clone());
                continue;
            }
        };
        let mask = credentials[i].value.as_ref().map(|value| value.mask());
        match keys
            .iter()
            .find(|key| key.mask_value.is_some() && key.mask_value == mask)
        {
            Some(key) => {
                report.scopes = Some(key.scopes.clone());
                report.created_at = Some(key.created_at.clone());
                report.last_used_at = key.last_used_at.clone();
                report.last_rolled_at = key.last_rolled_at.clone();
                report.age_days = age_days(&key.created_at, key.last_rolled_at.as_deref(), now);
            }
            None => {
                report.age_unknown = Some(
                    "not among the project's secret API keys: a team secret token, whose age \
                     PostHog does not show"
                        .to_owned(),
                );
            }
        }
    }
}

/// The configured project's secret API keys, or why they cannot be listed.
fn list_project_secret_keys(settings: &Settings) -> Result<Vec<ProjectSecretKeyInfo>, String> {
    let posthog = &settings.config.posthog;
    let Some(project) = posthog.project_id else {
        return Err(
            "set [posthog] project_id so that hogguard can read the project's secret \
                    API keys and learn their ages"
                .to_owned(),
        );
    };
    let Some(variable) = &posthog.admin_key else {
        return Err(
            "set [posthog] admin_key to the variable holding a personal API key with \
                    project:write, so that hogguard can read the project's secret API keys"
                .to_owned(),
        );
    };
    let admin = settings
        .require_variable(
            variable,
            Scope::AnyEnvironment,
            "[posthog] admin_key names it",
        )
        .map_err(|e| format!("{e:#}"))?;
    let listed = posthog
        .hosts()
        .and_then(|hosts| {
            Ok(WriterClient::connect(
                &hosts,
                &ClientConfig::default(),
                admin,
            )?)
        })
        .and_then(|client| Ok(client.project_secret_keys(project)?));
    listed.map_err(|e| format!("cannot list project {project}'s secret API keys: {e:#}"))
}

/// Days since the key was made or last rolled, whichever is later.
fn age_days(created_at: &str, last_rolled_at: Option<&str>, now: jiff::Timestamp) -> Option<u64> {
    let created: jiff::Timestamp = created_at.parse().ok()?;
    let renewed = last_rolled_at
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(created, |r| r.max(created));
    let seconds = now.as_second().saturating_sub(renewed.as_second());
    Some(u64::try_from(seconds).unwrap_or(0) / 86_400)
}

fn judge_policy(report: &mut KeyReport, config: &Config) {
    let Some(environment) = config.environments.get(&report.environment) else {
        return;
    };
    if let Some(scopes) = &report.scopes {
        if let Some(allowed) = &environment.allowed_scopes {
            let excess = policy::excess_scopes(scopes, allowed);
            if !excess.is_empty() {
                report.verdicts.push(Verdict {
                    id: "scope-not-allowed",
                    message: format!(
                        "holds {} beyond allowed_scopes [{}]",
                        excess.join(" "),
                        allowed.join(" ")
                    ),
                });
            }
        }
        if scopes.iter().any(|s| s == "*") && report.environment != "development" {
            report.verdicts.push(Verdict {
                id: "wildcard-scope",
                message: "holds `*` (full access) outside development".to_owned(),
            });
        }
        if report.environment == "production" {
            let projects = report.scoped_projects.as_deref().unwrap_or_default();
            let message = match config.posthog.project_id {
                _ if projects.is_empty() => Some(
                    "is not scoped to projects: it reaches every project of its owner".to_owned(),
                ),
                Some(project) if !projects.contains(&project) => Some(format!(
                    "is scoped to projects that do not include project {project}"
                )),
                _ => None,
            };
            if let Some(message) = message {
                report.verdicts.push(Verdict {
                    id: "not-project-scoped",
                    message,
                });
            }
        }
    }
    if let (Some(days), Some(max)) = (report.age_days, &environment.max_key_age)
        && let Ok(seconds) = age::parse(max)
        && days * 86_400 > seconds
    {
        report.verdicts.push(Verdict {
            id: "too-old",
            message: format!("made or rolled {days} days ago, beyond max_key_age {max}: rotate it"),
        });
    }
}

/// The same value in two environments defeats keeping them apart.
fn judge_sharing(credentials: &[Credential], reports: &mut [KeyReport]) {
    for i in 0..credentials.len() {
        let Some(value) = &credentials[i].value else {
            continue;
        };
        let others: Vec<String> = credentials
            .iter()
            .filter(|c| {
                c.environment != credentials[i].environment && c.value.as_ref() == Some(value)
            })
            .map(|c| c.environment.clone())
            .collect();
        if others.is_empty() {
            continue;
        }
        if reports[i].kind == Some(CredentialKind::ProjectApiKey.as_str()) {
            reports[i].warnings.push(Verdict {
                id: "project-shared-between-environments",
                message: format!(
                    "the same project key is used in {}: its events and flags land in one \
                     project; use one PostHog project per environment",
                    others.join(", ")
                ),
            });
        } else {
            reports[i].verdicts.push(Verdict {
                id: "shared-between-environments",
                message: format!("the same value is used in {}", others.join(", ")),
            });
        }
    }
}

fn human(reports: &[KeyReport]) -> String {
    let mut text = String::new();
    let mut environment = "";
    for report in reports {
        if report.environment != environment {
            environment = &report.environment;
            let _ = writeln!(text, "{}{environment}{}", style::BOLD, style::RESET);
        }
        let status = match report.status {
            "live" => format!("{}live{}", style::GREEN, style::RESET),
            "invalid" | "missing" => format!("{}{}{}", style::RED, report.status, style::RESET),
            other => other.to_owned(),
        };
        let _ = writeln!(
            text,
            "  {} ({}): {} {} {status}{}{}",
            report.name,
            report.variable,
            report.kind.unwrap_or("unknown kind"),
            report.masked.as_deref().unwrap_or("-"),
            report
                .region
                .as_deref()
                .map(|r| format!(" in {r}"))
                .unwrap_or_default(),
            report
                .reason
                .as_deref()
                .map(|r| format!(" ({})", crate::untrusted::escape(r)))
                .unwrap_or_default(),
        );
        if let Some(scopes) = &report.scopes {
            let projects = match &report.scoped_projects {
                Some(p) if !p.is_empty() => {
                    p.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
                }
                _ => "all".to_owned(),
            };
            let _ = writeln!(
                text,
                "      scopes {}; projects {projects}",
                scopes.join(" ")
            );
            let _ = writeln!(
                text,
                "      created {}, last used {}, last rolled {}{}",
                crate::untrusted::escape(report.created_at.as_deref().unwrap_or("?")),
                crate::untrusted::escape(report.last_used_at.as_deref().unwrap_or("never")),
                crate::untrusted::escape(report.last_rolled_at.as_deref().unwrap_or("never")),
                report
                    .age_days
                    .map(|d| format!(" ({d} days old)"))
                    .unwrap_or_default(),
            );
        }
        if let Some(reason) = &report.age_unknown {
            let _ = writeln!(
                text,
                "      age unknown: {}",
                crate::untrusted::escape(reason)
            );
        }
        let marked = report
            .warnings
            .iter()
            .map(|warning| (style::YELLOW, '!', warning))
            .chain(
                report
                    .verdicts
                    .iter()
                    .map(|verdict| (style::RED, '✗', verdict)),
            );
        for (colour, mark, verdict) in marked {
            let _ = writeln!(
                text,
                "      {colour}{mark} {}{}: {}",
                verdict.id,
                style::RESET,
                verdict.message
            );
        }
    }
    if reports.is_empty() {
        text.push_str(
            "no credentials configured: add [environments.NAME.credentials] to hogguard.toml\n",
        );
    }
    text
}
