//! `hogguard check`: the PostHog security checklist, each item judged against the real
//! repository, files and keys.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use hogguard_scan::{Baseline, ScanOptions, Scanner};
use hogguard_secret::CredentialKind;
use serde::Serialize;

use crate::Status;
use crate::audit::checkpoint_key;
use crate::cli::{CheckArgs, CheckFormat};
use crate::commands::keys::{self, KeyReport};
use crate::config::{AuditConfig, Config};
use crate::environments;
use crate::printer::{self, Printer, style};
use crate::repo::Repository;
use crate::settings::Settings;
use crate::untrusted;

/// How an item came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// One checklist item's result.
#[derive(Debug, Serialize)]
pub(crate) struct Item {
    id: &'static str,
    status: Outcome,
    reason: String,
    fix: String,
    details: Vec<String>,
}

impl Item {
    pub(crate) fn new(
        id: &'static str,
        status: Outcome,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Item {
        Item {
            id,
            status,
            reason: untrusted::redact(&reason.into()).into_owned(),
            fix: fix.into(),
            details: Vec::new(),
        }
    }

    /// Adds the lines that back the reason up; they quote keys' places, paths and errors,
    /// so they are redacted like the reason.
    fn details(mut self, details: Vec<String>) -> Item {
        self.details = details
            .iter()
            .map(|detail| untrusted::redact(detail).into_owned())
            .collect();
        self
    }
}

pub(crate) fn run(args: CheckArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let config = &settings.config;
    let repository = Repository::discover(Path::new("."))?;
    let items = vec![
        secrets_in_env(config, repository.as_ref(), args.deep)?,
        env_files_ignored(config, repository.as_ref())?,
        keys_per_environment(settings, args.env.as_deref())?,
    ];
    let mut items = items;
    items.extend(posthog_items(
        settings,
        args.env.as_deref(),
        args.offline,
        printer,
    )?);
    items.push(webhook_signatures(settings, args.env.as_deref())?);
    items.push(audit_log(settings));

    let failed = items.iter().any(|item| item.status == Outcome::Fail);
    let text = match args.format {
        CheckFormat::Human => human(&items, printer.quiet()),
        CheckFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({ "version": 1, "items": items }))?
                + "\n"
        }
        CheckFormat::Markdown => markdown(&items),
    };
    printer.out(&text)?;
    Ok(Status::of_results(failed))
}

/// No PostHog secret in tracked files (or, with `--deep`, anywhere in history).
fn secrets_in_env(config: &Config, repository: Option<&Repository>, deep: bool) -> Result<Item> {
    const ID: &str = "secrets-in-env";
    let scanner = Scanner::new(&config.scan.rules, ScanOptions::default())?;
    let (outcome, what) = match repository {
        Some(repository) if deep => (
            scanner.scan_git(&repository.workdir())?,
            "the repository's history",
        ),
        Some(repository) => (
            scanner.scan_tracked(&repository.workdir())?,
            "tracked files",
        ),
        None => (scanner.scan_paths(&[".".into()])?, "the directory"),
    };
    let baseline = match &config.scan.baseline {
        Some(path) => Some(Baseline::load(path)?),
        None => None,
    };
    let secrets: Vec<String> = outcome
        .findings
        .iter()
        .filter(|f| f.secret && !baseline.as_ref().is_some_and(|b| b.contains(f)))
        .map(|f| match &f.commit {
            Some(commit) => format!(
                "{}:{}:{} {} {} (commit {})",
                f.path,
                f.line,
                f.column,
                f.rule,
                f.masked,
                &commit[..12.min(commit.len())]
            ),
            None => format!("{}:{}:{} {} {}", f.path, f.line, f.column, f.rule, f.masked),
        })
        .collect();
    Ok(if secrets.is_empty() {
        Item::new(
            ID,
            Outcome::Pass,
            format!("no PostHog secret in {} ({} scanned)", what, outcome.inputs),
            "",
        )
    } else {
        Item::new(
            ID,
            Outcome::Fail,
            format!("{} PostHog secret{} in {what}", secrets.len(), if secrets.len() == 1 { "" } else { "s" }),
            "move each value into the environment (a git-ignored .env file or your secret manager), \
             rotate it (`hogguard rotate` or `hogguard scan --revoke`), and rewrite history if it was pushed",
        )
        .details(secrets)
    })
}

/// Env file names git should ignore even before they exist.
const USUAL_ENV_FILES: &[&str] = &[
    ".env",
    ".env.local",
    ".env.development.local",
    ".env.production.local",
];

/// Environment files git must never pick up: the usual names, and every configured one.
fn env_files_ignored(config: &Config, repository: Option<&Repository>) -> Result<Item> {
    const ID: &str = "env-files-ignored";
    let Some(repository) = repository else {
        return Ok(Item::new(
            ID,
            Outcome::Skip,
            "not a git repository",
            "run it inside the repository",
        ));
    };
    let root = repository.workdir();
    let mut rules = repository.ignore_rules()?;
    let mut present: BTreeSet<String> = repository.env_files(&mut rules)?.into_iter().collect();
    // Names git should ignore before anyone creates them: the usual ones and the configured.
    let mut expected: BTreeSet<String> = USUAL_ENV_FILES.iter().map(|n| (*n).to_owned()).collect();
    for environment in config.environments.values() {
        if let Some(path) = &environment.env_file
            && let Some(relative) = repository.relative(path)?
        {
            if root.join(&relative).is_file() {
                present.insert(relative);
            } else {
                expected.insert(relative);
            }
        }
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut exposed = BTreeSet::new();
    for relative in &present {
        let mut problem = |text: String, fix: String| {
            problems.push(text);
            fixes.push(fix);
            exposed.insert(relative.clone());
        };
        if repository.is_tracked(relative) {
            problem(
                format!("{relative} is tracked by git: ignore rules do not protect tracked files"),
                format!("git rm --cached {relative}"),
            );
        }
        if !rules.is_ignored(relative)? {
            problem(
                format!("{relative} is not ignored by git"),
                format!("add `{relative}` to .gitignore"),
            );
        }
        if let Ok(metadata) = std::fs::metadata(root.join(relative)) {
            use std::os::unix::fs::PermissionsExt;
            if metadata.permissions().mode() & 0o044 != 0 {
                problem(
                    format!("{relative} is readable by other users"),
                    format!("chmod 600 {relative}"),
                );
            }
        }
    }
    let mut unprotected_names = 0;
    for relative in expected.difference(&present) {
        if !rules.is_ignored(relative)? {
            unprotected_names += 1;
            problems.push(format!(
                "{relative} would not be ignored by git if it were created"
            ));
            fixes.push(format!("add `{relative}` to .gitignore"));
        }
    }
    let files = present.len();
    Ok(if problems.is_empty() {
        Item::new(
            ID,
            Outcome::Pass,
            format!(
                "{files} of {files} environment {} ignored, untracked and private",
                if files == 1 { "file is" } else { "files are" }
            ),
            "",
        )
        .details(present.into_iter().collect())
    } else {
        let mut reason = Vec::new();
        if !exposed.is_empty() {
            reason.push(format!(
                "{} of {files} environment files {} not protected",
                exposed.len(),
                if exposed.len() == 1 { "is" } else { "are" }
            ));
        }
        if unprotected_names > 0 {
            reason.push(format!(
                "{} usual {} would not be ignored",
                unprotected_names,
                if unprotected_names == 1 {
                    "name"
                } else {
                    "names"
                }
            ));
        }
        Item::new(
            ID,
            Outcome::Fail,
            reason.join("; "),
            format!(
                "{} (`hogguard init` adds the usual ignore lines)",
                fixes.join("; ")
            ),
        )
        .details(problems)
    })
}

/// No credential value shared between two environments.
fn keys_per_environment(settings: &Settings, only: Option<&str>) -> Result<Item> {
    let config = &settings.config;
    const ID: &str = "keys-per-environment";
    if config.environments.len() < 2 {
        return Ok(Item::new(
            ID,
            Outcome::Warn,
            "fewer than two environments are configured, so none can be compared",
            "declare [environments.development], [environments.staging] and [environments.production] in hogguard.toml",
        ));
    }
    let credentials = environments::credentials(settings, None)?;
    // Secrets and public project keys are grouped apart: a shared secret is a failure, a
    // shared `phc_` key only sends one environment's events and flags to the other's project.
    let mut secrets: BTreeMap<String, Vec<&environments::Credential>> = BTreeMap::new();
    let mut project_keys: BTreeMap<String, Vec<&environments::Credential>> = BTreeMap::new();
    for credential in &credentials {
        if let Some(value) = &credential.value {
            let group = if credential.kind() == Some(CredentialKind::ProjectApiKey) {
                &mut project_keys
            } else {
                &mut secrets
            };
            group
                .entry(value.fingerprint())
                .or_default()
                .push(credential);
        }
    }
    let shared = |group: &BTreeMap<String, Vec<&environments::Credential>>| -> Vec<String> {
        group
            .values()
            .filter(|holders| {
                let environments: std::collections::BTreeSet<&str> = holders
                    .iter()
                    .map(|holder| holder.environment.as_str())
                    .collect();
                environments.len() > 1 && only.is_none_or(|env| environments.contains(env))
            })
            .map(|holders| {
                holders
                    .iter()
                    .map(|holder| {
                        let mask = holder
                            .value
                            .as_ref()
                            .map(hogguard_secret::Secret::mask)
                            .unwrap_or_default();
                        format!("{}.{} ({mask})", holder.environment, holder.name)
                    })
                    .collect::<Vec<_>>()
                    .join(" = ")
            })
            .collect()
    };
    let (shared_secrets, shared_project_keys) = (shared(&secrets), shared(&project_keys));
    Ok(if !shared_secrets.is_empty() {
        Item::new(
            ID,
            Outcome::Fail,
            "the same value is used in more than one environment",
            "create a separate key for each environment",
        )
        .details(
            shared_secrets
                .into_iter()
                .chain(shared_project_keys)
                .collect(),
        )
    } else if !shared_project_keys.is_empty() {
        Item::new(
            ID,
            Outcome::Warn,
            "environments share a PostHog project key, so one environment's events and flags \
             land in the other's project",
            "use one PostHog project (and its phc_ key) per environment",
        )
        .details(shared_project_keys)
    } else {
        Item::new(
            ID,
            Outcome::Pass,
            format!(
                "{} credential values, none shared between environments",
                secrets.len() + project_keys.len()
            ),
            "",
        )
    })
}

/// `least-privilege` and `key-age`, which need PostHog's word on each key.
fn posthog_items(
    settings: &Settings,
    only: Option<&str>,
    offline: bool,
    printer: &Printer,
) -> Result<Vec<Item>> {
    const SCOPES: &str = "least-privilege";
    const AGE: &str = "key-age";
    if offline {
        return Ok(vec![
            Item::new(
                SCOPES,
                Outcome::Skip,
                "offline: scopes are known only to PostHog",
                "run without --offline",
            ),
            Item::new(
                AGE,
                Outcome::Skip,
                "offline: key ages are known only to PostHog",
                "run without --offline",
            ),
        ]);
    }
    let reports = keys::inventory(settings, only, printer)?;
    let unknown: Vec<String> = reports
        .iter()
        .filter(|r| r.status() == "unknown")
        .map(|r| {
            format!(
                "{}: PostHog could not be asked: {}",
                r.place(),
                r.reason().unwrap_or("no answer")
            )
        })
        .collect();
    let live: Vec<&KeyReport> = reports.iter().filter(|r| r.status() == "live").collect();
    let scopes = judge(
        &KeyItem {
            id: SCOPES,
            verdicts: &["scope-not-allowed", "wildcard-scope", "not-project-scoped"],
            fix: "create keys with only the scopes in allowed_scopes, scoped to the project, and rotate to them",
            unknown: |count| {
                format!(
                    "PostHog could not tell about {}",
                    printer::plural(count, "key", "keys")
                )
            },
            none: "no live PostHog key is configured",
        },
        &reports,
        &unknown,
        live.len(),
        format!(
            "{} only allowed scopes",
            printer::plural(live.len(), "live key holds", "live keys hold")
        ),
    );
    let scopes = least_privilege_evidence(
        scopes,
        crate::commands::scopes::unused_key_scopes(&settings.config, &reports, printer)?,
    );
    // Only environments with a max_key_age have an age to keep; a key whose age PostHog did
    // not tell is never counted as young.
    let aged: Vec<&KeyReport> = live
        .into_iter()
        .filter(|r| {
            settings
                .config
                .environments
                .get(r.environment())
                .is_some_and(|e| e.max_key_age.is_some())
        })
        .collect();
    let mut age_unknown = unknown;
    age_unknown.extend(aged.iter().filter_map(|r| {
        r.age_unknown()
            .map(|reason| format!("{}: {reason}", r.place()))
    }));
    let known = aged.iter().filter(|r| r.age_unknown().is_none()).count();
    let age = judge(
        &KeyItem {
            id: AGE,
            verdicts: &["too-old"],
            fix: "rotate the keys (`hogguard rotate ENV CREDENTIAL`)",
            unknown: |count| {
                format!(
                    "{} not known",
                    printer::plural(count, "key's age is", "keys' ages are")
                )
            },
            none: "no live key in an environment that sets max_key_age",
        },
        &reports,
        &age_unknown,
        known,
        format!(
            "{} younger than max_key_age",
            printer::plural(known, "live key is", "live keys are")
        ),
    );
    Ok(vec![scopes, age])
}

/// `least-privilege` with the audit log's evidence: keys holding scopes that no call through
/// the proxy used in the window make a passing item a warning (a failing one keeps failing),
/// with each key's suggested list.
fn least_privilege_evidence(mut item: Item, unused: Vec<String>) -> Item {
    if unused.is_empty() {
        return item;
    }
    if matches!(item.status, Outcome::Pass | Outcome::Skip) {
        item.status = Outcome::Warn;
        item.reason = format!(
            "{} scopes no call through the proxy used in the last {}",
            printer::plural(unused.len(), "key holds", "keys hold"),
            crate::commands::scopes::CHECK_WINDOW
        );
        item.fix = "reduce each key to its suggested scopes (`hogguard scopes`) and rotate to the reduced key".to_owned();
    }
    item.details.extend(
        unused
            .iter()
            .map(|detail| untrusted::redact(detail).into_owned()),
    );
    item
}

/// A checklist item judged from the key reports, and what it says in each case.
#[derive(Clone, Copy)]
struct KeyItem<'a> {
    id: &'static str,
    /// The verdicts that fail it.
    verdicts: &'a [&'a str],
    fix: &'static str,
    /// Its reason when this many keys could not be judged.
    unknown: fn(usize) -> String,
    /// Its reason when no key could be judged.
    none: &'static str,
}

/// A PostHog item: `fail` with the reports' verdicts of the item's ids, else `warn` with what
/// is not known, else `skip` when no key could be judged, else `pass`.
fn judge(
    item: &KeyItem<'_>,
    reports: &[KeyReport],
    unknown: &[String],
    judged: usize,
    pass: String,
) -> Item {
    let KeyItem {
        id,
        verdicts: ids,
        fix,
        ..
    } = *item;
    let failing: Vec<&KeyReport> = reports
        .iter()
        .filter(|r| r.verdicts.iter().any(|v| ids.contains(&v.id)))
        .collect();
    if !failing.is_empty() {
        let details: Vec<String> = failing
            .iter()
            .flat_map(|r| {
                r.verdicts
                    .iter()
                    .filter(|v| ids.contains(&v.id))
                    .map(move |v| format!("{}: {}", r.place(), v.message))
            })
            .chain(unknown.iter().cloned())
            .collect();
        let verdicts = details.len() - unknown.len();
        let keys = printer::plural(failing.len(), "key breaks", "keys break");
        let reason = if verdicts == failing.len() {
            format!("{keys} the policy")
        } else {
            format!("{keys} the policy ({verdicts} verdicts)")
        };
        return Item::new(id, Outcome::Fail, reason, fix).details(details);
    }
    if !unknown.is_empty() {
        return Item::new(
            id,
            Outcome::Warn,
            (item.unknown)(unknown.len()),
            "see each key's reason; run again when PostHog answers",
        )
        .details(unknown.to_vec());
    }
    if judged == 0 {
        return Item::new(
            id,
            Outcome::Skip,
            item.none,
            "name keys in [environments.NAME.credentials]",
        );
    }
    Item::new(id, Outcome::Pass, pass, "")
}

/// The fewest random bytes a webhook signing secret should carry.
const MIN_WEBHOOK_SECRET_BYTES: usize = 24;

/// A strong, unshared webhook secret in every environment.
fn webhook_signatures(settings: &Settings, only: Option<&str>) -> Result<Item> {
    let config = &settings.config;
    const ID: &str = "webhook-signatures";
    if config.environments.is_empty() {
        return Ok(Item::new(
            ID,
            Outcome::Warn,
            "no environments are configured",
            "declare environments with a webhook_secret credential in hogguard.toml",
        ));
    }
    let credentials = environments::credentials(settings, only)?;
    let is_webhook_secret = |c: &environments::Credential| {
        c.name.contains("webhook") || c.kind() == Some(CredentialKind::WebhookSecret)
    };
    // A project says it receives webhooks by naming a webhook secret somewhere; most apps
    // receive none, and for them there is nothing to sign.
    if !environments::credentials(settings, None)?
        .iter()
        .any(is_webhook_secret)
    {
        return Ok(Item::new(
            ID,
            Outcome::Skip,
            "no environment names a webhook secret: the project receives no webhooks",
            "if it does, add a webhook_secret credential to each environment",
        ));
    }
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for environment in config
        .environments
        .keys()
        .filter(|e| only.is_none_or(|o| o == e.as_str()))
    {
        let secrets: Vec<_> = credentials
            .iter()
            .filter(|c| &c.environment == environment && is_webhook_secret(c))
            .collect();
        if secrets.is_empty() {
            problems.push(format!("{environment}: no webhook secret configured"));
        }
        for credential in secrets {
            let Some(value) = &credential.value else {
                problems.push(format!(
                    "{environment}: {} has no value",
                    credential.variable
                ));
                continue;
            };
            if random_bytes(value.expose()) < MIN_WEBHOOK_SECRET_BYTES {
                problems.push(format!(
                    "{environment}: {} is weaker than {MIN_WEBHOOK_SECRET_BYTES} random bytes",
                    credential.variable
                ));
            }
            if let Some(other) = seen.insert(value.fingerprint(), environment.clone())
                && &other != environment
            {
                problems.push(format!(
                    "{environment}: {} is the same secret as in {other}",
                    credential.variable
                ));
            }
        }
    }
    Ok(if problems.is_empty() {
        Item::new(
            ID,
            Outcome::Pass,
            "every environment has its own strong webhook secret",
            "",
        )
    } else {
        Item::new(
            ID,
            Outcome::Fail,
            format!(
                "{} with the webhook secrets",
                printer::plural(problems.len(), "problem", "problems")
            ),
            "make one with `hogguard webhook secret` per environment and verify deliveries with it",
        )
        .details(problems)
    })
}

/// Random bytes a secret plausibly carries: the decoded length of a `whsec_` secret, else
/// about six bits per character of a high-entropy string, and none for a placeholder.
fn random_bytes(secret: &str) -> usize {
    let body = secret.strip_prefix("whsec_").unwrap_or(secret);
    if hogguard_scan::shannon_entropy(body.as_bytes()) < 3.0 {
        return 0;
    }
    body.trim_end_matches('=').len() * 6 / 8
}

/// The audit log: configured, present, and its chain verifies.
fn audit_log(settings: &Settings) -> Item {
    const ID: &str = "audit-log";
    match &settings.config.audit {
        None => Item::new(
            ID,
            Outcome::Fail,
            "no audit log is configured",
            "add an [audit] section with a path to hogguard.toml",
        ),
        Some(audit) => audit_log_item(settings, audit, ID),
    }
}

/// The configured log: present, and its chain (and checkpoint) verifies.
fn audit_log_item(settings: &Settings, audit: &AuditConfig, id: &'static str) -> Item {
    if !audit.path.is_file() {
        // A log that is not there yet fails only where the project made it mandatory.
        let outcome = if audit.required {
            Outcome::Fail
        } else {
            Outcome::Warn
        };
        return Item::new(
            id,
            outcome,
            format!("the audit log {} does not exist yet", audit.path.display()),
            "run a command that logs (or `hogguard audit log ...`) to start it",
        );
    }
    let key = match checkpoint_key(settings, audit) {
        Ok(key) => key,
        Err(e) => {
            return Item::new(
                id,
                Outcome::Fail,
                format!("{e:#}"),
                "set the checkpoint key variable",
            );
        }
    };
    match hogguard_audit::verify(&audit.path, key.as_ref()) {
        Ok(report) => match &report.problem {
            None => Item::new(
                id,
                Outcome::Pass,
                format!("{} entries, the chain verifies", report.entries),
                "",
            ),
            Some(problem) => Item::new(
                id,
                Outcome::Fail,
                format!("the log does not verify: {problem}"),
                "find out who changed the log; keep the damaged file as evidence and start a new log",
            ),
        },
        Err(e) => Item::new(
            id,
            Outcome::Fail,
            format!("the log cannot be read: {:#}", anyhow::Error::from(e)),
            "check the file's permissions",
        ),
    }
}

/// The report for people; `quiet` keeps only the items that fail or warn.
fn human(items: &[Item], quiet: bool) -> String {
    let mut text = String::new();
    for item in items {
        if quiet && !matches!(item.status, Outcome::Fail | Outcome::Warn) {
            continue;
        }
        let label = match item.status {
            Outcome::Pass => format!("{}PASS{}", style::GREEN, style::RESET),
            Outcome::Warn => format!("{}WARN{}", style::YELLOW, style::RESET),
            Outcome::Fail => format!("{}FAIL{}", style::BOLD_RED, style::RESET),
            Outcome::Skip => format!("{}SKIP{}", style::DIM, style::RESET),
        };
        let _ = writeln!(
            text,
            "{label}  {:<22} {}",
            item.id,
            crate::untrusted::escape(&item.reason)
        );
        if matches!(item.status, Outcome::Fail | Outcome::Warn) {
            for detail in item.details.iter().filter(|d| **d != item.reason) {
                let _ = writeln!(text, "      {}", crate::untrusted::escape(detail));
            }
        }
        if !item.fix.is_empty() && item.status != Outcome::Pass {
            let _ = writeln!(
                text,
                "      {}fix:{} {}",
                style::DIM,
                style::RESET,
                item.fix
            );
        }
    }
    if !quiet {
        let failed = items.iter().filter(|i| i.status == Outcome::Fail).count();
        let _ = writeln!(text, "{} of {} checks failed", failed, items.len());
    }
    text
}

fn markdown(items: &[Item]) -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    let mut text = String::from("| | Check | Result | Fix |\n|---|---|---|---|\n");
    for item in items {
        let mark = match item.status {
            Outcome::Pass => "✅",
            Outcome::Warn => "⚠️",
            Outcome::Fail => "❌",
            Outcome::Skip => "⏭️",
        };
        let _ = writeln!(
            text,
            "| {mark} | `{}` | {} | {} |",
            item.id,
            cell(&item.reason),
            cell(&item.fix)
        );
    }
    text
}
