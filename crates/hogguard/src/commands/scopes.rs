//! `hogguard scopes`: least privilege from evidence. Each key's granted scopes (PostHog's word)
//! against the scopes its calls through the proxy needed (the audit log's `posthog.api.call`
//! entries), and each proxy client's allowed scopes against its calls; and `scopes import`, which
//! refreshes the proxy's scope table from an instance's OpenAPI schema.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hogguard_audit::{Filter, Timestamp};
use hogguard_proxy::{CALL_ACTION, Scope, ScopeTable, minimal_scopes};
use serde::Serialize;
use serde_json::Value;

use crate::Status;
use crate::cli::{ScopesArgs, ScopesCommand, ScopesFormat, ScopesImportArgs};
use crate::commands::keys::{self, KeyReport};
use crate::config::{Config, DEFAULT_SCOPE_TABLE};
use crate::printer::{Printer, style};
use crate::settings::Settings;

/// The largest schema read: PostHog's is tens of megabytes at most.
const MAX_SCHEMA_BYTES: u64 = 256 << 20;

/// The window `check least-privilege` judges keys over.
pub(crate) const CHECK_WINDOW: &str = "30d";

pub(crate) fn run(args: ScopesArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    if let Some(ScopesCommand::Import(import_args)) = &args.command {
        return import(import_args, &settings.config, printer);
    }
    let usage = Usage::read(&settings.config, &args.since, printer)?;
    let reports = keys::inventory(settings, args.env.as_deref(), printer)?;
    let keys: Vec<KeyScopes> = reports
        .iter()
        .filter_map(|report| key_scopes(report, &usage))
        .collect();
    let clients = client_scopes(&settings.config, &usage);
    let failed = keys.iter().any(|key| !key.unused.is_empty())
        || clients.iter().any(|client| !client.unused.is_empty());
    let text = match args.format {
        ScopesFormat::Json => {
            let document = serde_json::json!({ "version": 1, "keys": keys, "clients": clients });
            serde_json::to_string_pretty(&document)? + "\n"
        }
        ScopesFormat::Human => human(&keys, &clients, &args.since, &usage),
    };
    printer.out(&text)?;
    Ok(Status::of_results(failed))
}

/// One key's scopes, as the JSON report has them.
#[derive(Debug, Serialize)]
pub(crate) struct KeyScopes {
    environment: String,
    credential: String,
    masked: String,
    granted: Vec<String>,
    used: Vec<String>,
    unused: Vec<String>,
    suggested: Vec<String>,
}

/// One proxy client's scopes.
#[derive(Debug, Serialize)]
struct ClientScopes {
    name: String,
    allowed: Vec<String>,
    used: Vec<String>,
    unused: Vec<String>,
}

/// What the calls in the window needed, per injected key (environment and mask) and per
/// client: the scopes of the forwarded calls, and whether any called an endpoint of unknown
/// scope (which only `*` covers).
#[derive(Debug, Default)]
pub(crate) struct Usage {
    by_key: BTreeMap<(String, String), Needs>,
    by_client: BTreeMap<String, Needs>,
    environments: std::collections::BTreeSet<String>,
    calls: usize,
}

#[derive(Debug, Default)]
struct Needs {
    scopes: Vec<Scope>,
    unknown_endpoints: bool,
}

impl Needs {
    fn add(&mut self, required: Option<&str>) {
        match required {
            Some(scopes) => self
                .scopes
                .extend(scopes.split_whitespace().filter_map(|s| s.parse().ok())),
            None => self.unknown_endpoints = true,
        }
    }

    /// The fewest scopes that serve every call, as text.
    fn used(&self) -> Vec<String> {
        minimal_scopes(self.scopes.iter().cloned())
            .iter()
            .map(Scope::to_string)
            .collect()
    }

    /// [`Needs::used`], with `*` when an endpoint of unknown scope was called.
    fn suggested(&self) -> Vec<String> {
        let mut suggested = self.used();
        if self.unknown_endpoints {
            suggested.push("*".to_owned());
        }
        suggested
    }
}

impl Usage {
    /// The `posthog.api.call` entries of the configured audit log within `since` (an age such
    /// as `30d`); none, with a warning, when there is no log yet.
    pub(crate) fn read(config: &Config, since: &str, printer: &Printer) -> Result<Usage> {
        let seconds = crate::age::parse(since).with_context(|| format!("--since {since}"))?;
        let path = config.audit.clone().unwrap_or_default().path;
        if !path.exists() {
            printer.warning(&format!(
                "no audit log at {}: no call through the proxy is known, so every scope counts as unused",
                path.display()
            ));
            return Ok(Usage::default());
        }
        let now = Timestamp::now().unix_millis();
        let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
        let filter = Filter {
            since: Some(Timestamp::from_unix_millis(
                now.saturating_sub(seconds.saturating_mul(1000)),
            )),
            action: Some(CALL_ACTION.to_owned()),
            ..Filter::default()
        };
        let mut usage = Usage::default();
        for entry in hogguard_audit::query(&path, &filter)
            .with_context(|| format!("cannot read the audit log {}", path.display()))?
        {
            let entry = entry.with_context(|| format!("the audit log {}", path.display()))?;
            if entry.metadata.get("forwarded") != Some(&Value::Bool(true)) {
                continue;
            }
            let text = |name: &str| entry.metadata.get(name).and_then(Value::as_str);
            let required = text("required_scope");
            usage.calls += 1;
            if let Some(environment) = text("environment") {
                usage.environments.insert(environment.to_owned());
                if let Some(credential) = text("credential") {
                    usage
                        .by_key
                        .entry((environment.to_owned(), credential.to_owned()))
                        .or_default()
                        .add(required);
                }
            }
            usage
                .by_client
                .entry(entry.user_id.clone())
                .or_default()
                .add(required);
        }
        Ok(usage)
    }
}

/// A key's granted, used, unused and suggested scopes; `None` for a credential whose scopes
/// PostHog did not tell (public keys, dead or unreachable ones).
pub(crate) fn key_scopes(report: &KeyReport, usage: &Usage) -> Option<KeyScopes> {
    let granted = report.scopes()?.to_vec();
    let masked = report.masked()?.to_owned();
    let environment = report.environment().to_owned();
    let empty = Needs::default();
    let needs = usage
        .by_key
        .get(&(environment.clone(), masked.clone()))
        .unwrap_or(&empty);
    let suggested = needs.suggested();
    Some(KeyScopes {
        credential: report.name().to_owned(),
        unused: unused(&granted, &suggested),
        used: needs.used(),
        granted,
        suggested,
        environment,
        masked,
    })
}

/// The granted scopes not in the suggested list: a scope no call needed, and a broader one
/// (`*`, `x:write`) where narrower ones served every call.
fn unused(granted: &[String], suggested: &[String]) -> Vec<String> {
    granted
        .iter()
        .filter(|scope| !suggested.contains(scope))
        .cloned()
        .collect()
}

fn client_scopes(config: &Config, usage: &Usage) -> Vec<ClientScopes> {
    let Some(proxy) = &config.proxy else {
        return Vec::new();
    };
    let empty = Needs::default();
    proxy
        .clients
        .iter()
        .map(|(name, client)| {
            let needs = usage.by_client.get(name).unwrap_or(&empty);
            ClientScopes {
                name: name.clone(),
                allowed: client.scopes.clone(),
                used: needs.suggested(),
                unused: unused(&client.scopes, &needs.suggested()),
            }
        })
        .collect()
}

/// For `check least-privilege`: each key (of an environment the proxy served in the window)
/// holding scopes no proxied call used, as `place: unused …; suggested …`.
pub(crate) fn unused_key_scopes(
    config: &Config,
    reports: &[KeyReport],
    printer: &Printer,
) -> Result<Vec<String>> {
    let usage = Usage::read(config, CHECK_WINDOW, printer)?;
    Ok(reports
        .iter()
        .filter(|report| usage.environments.contains(report.environment()))
        .filter_map(|report| {
            let key = key_scopes(report, &usage)?;
            (!key.unused.is_empty()).then(|| {
                format!(
                    "{}: unused for {CHECK_WINDOW}: {}; suggested: {}",
                    report.place(),
                    key.unused.join(" "),
                    if key.suggested.is_empty() {
                        "none (no proxied call used it)".to_owned()
                    } else {
                        key.suggested.join(" ")
                    }
                )
            })
        })
        .collect())
}

fn human(keys: &[KeyScopes], clients: &[ClientScopes], since: &str, usage: &Usage) -> String {
    let mut text = String::new();
    let list = |scopes: &[String]| {
        if scopes.is_empty() {
            "none".to_owned()
        } else {
            scopes.join(" ")
        }
    };
    let _ = writeln!(
        text,
        "{}{} proxied calls in the last {since}{}",
        style::BOLD,
        usage.calls,
        style::RESET
    );
    for key in keys {
        let _ = writeln!(
            text,
            "key {}.{} ({})",
            key.environment, key.credential, key.masked
        );
        let _ = writeln!(text, "  granted    {}", list(&key.granted));
        let _ = writeln!(text, "  used       {}", list(&key.used));
        let unused = list(&key.unused);
        if key.unused.is_empty() {
            let _ = writeln!(text, "  unused     none");
        } else {
            let _ = writeln!(text, "  unused     {}{unused}{}", style::RED, style::RESET);
        }
        let _ = writeln!(text, "  suggested  {}", list(&key.suggested));
    }
    for client in clients {
        let _ = writeln!(text, "client {}", client.name);
        let _ = writeln!(text, "  allowed    {}", list(&client.allowed));
        let _ = writeln!(text, "  used       {}", list(&client.used));
        if client.unused.is_empty() {
            let _ = writeln!(text, "  unused     none");
        } else {
            let _ = writeln!(
                text,
                "  unused     {}{}{}",
                style::RED,
                client.unused.join(" "),
                style::RESET
            );
        }
    }
    if keys.is_empty() && clients.is_empty() {
        text.push_str("no key with known scopes and no proxy client is configured\n");
    }
    text
}

/// `hogguard scopes import SCHEMA.json`.
fn import(args: &ScopesImportArgs, config: &Config, printer: &Printer) -> Result<Status> {
    let schema = hogguard_fs::read_regular(&args.schema, MAX_SCHEMA_BYTES)
        .with_context(|| format!("cannot read {}", args.schema.display()))?;
    let name = args.schema.file_name().map_or_else(
        || args.schema.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let file = hogguard_proxy::import_openapi(&schema, &name, &today)
        .with_context(|| format!("cannot import {}", args.schema.display()))?;
    let table = ScopeTable::compile(&file)
        .with_context(|| format!("the schema {}", args.schema.display()))?;
    let output = output_path(args, config);
    if let Some(dir) = output.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    hogguard_fs::replace(&output, file.to_toml().as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let with_keys = file
        .operation
        .iter()
        .filter(|operation| !operation.scopes.is_empty())
        .count();
    printer.out(&format!(
        "wrote {} operations on {} endpoints ({with_keys} take personal API keys) to {}\n",
        file.operation.len(),
        table.endpoints(),
        output.display()
    ))?;
    if config.proxy.is_none() {
        printer.note("the proxy reads it from there once [proxy] is configured");
    }
    Ok(Status::Clean)
}

/// `--output`, else `[proxy] scope_table`, else the default beside the configuration.
fn output_path(args: &ScopesImportArgs, config: &Config) -> PathBuf {
    args.output
        .clone()
        .or_else(|| {
            config
                .proxy
                .as_ref()
                .and_then(|proxy| proxy.scope_table.clone())
        })
        .unwrap_or_else(|| Path::new(DEFAULT_SCOPE_TABLE).to_owned())
}
