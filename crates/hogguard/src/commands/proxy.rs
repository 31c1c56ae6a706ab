//! `hogguard proxy`: the PostHog API proxy, with its clients, credentials and scope table read
//! from the configuration and the env files (again on SIGHUP and when a watched file changes),
//! and its audit entries written to the configured audit log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hogguard_proxy::{
    AuditFsync, AuditMode, BoxError, Client, LogSink, ProxyConfig, ScopeTable, Snapshot,
    SnapshotSource,
};
use hogguard_secret::CredentialKind;

use crate::Status;
use crate::cli::{ProxyArgs, ProxyCommand};
use crate::config::{AuditConfig, Config, ProxyAudit, ProxySection};
use crate::environments;
use crate::printer::Printer;
use crate::settings::{Scope, Settings};

/// The largest scope table file read.
const MAX_TABLE_BYTES: u64 = 64 << 20;

pub(crate) fn run(
    args: ProxyArgs,
    config_path: Option<&Path>,
    printer: &Printer,
) -> Result<Status> {
    if let Some(ProxyCommand::Token) = args.command {
        let token = hogguard_proxy::new_client_token().context("no randomness for a token")?;
        printer.out(&format!("{}\n", token.expose()))?;
        return Ok(Status::Clean);
    }
    let settings = Settings::resolve(config_path)?;
    let config = &settings.config;
    let section = proxy_section(config)?;
    let source = ConfigSource {
        config_path: config_path.map(Path::to_owned),
        environment: args.env.clone(),
    };
    // Read once here, so that a broken setup fails before anything listens.
    source.read(&settings)?;
    let mut proxy = ProxyConfig::new(
        args.listen.unwrap_or(section.listen),
        config.posthog.hosts()?,
    );
    proxy.audit = match section.audit {
        ProxyAudit::Required => AuditMode::Required,
        ProxyAudit::BestEffort => AuditMode::BestEffort,
    };
    if let Some(limit) = section.body_limit {
        proxy.body_limit = limit;
    }
    if !proxy.listen.ip().is_loopback() {
        printer.warning(&format!(
            "the proxy listens on {}, beyond this machine: anyone who can reach it and holds a client token can call PostHog",
            proxy.listen
        ));
    }
    let audit_config = config.audit.clone().unwrap_or_default();
    let audit = open_audit_log(&settings, &audit_config, section.audit_fsync)?;
    let listen = proxy.listen;
    hogguard_proxy::serve_until_signalled(proxy, Arc::new(source), Arc::new(audit))
        .with_context(|| format!("the proxy on {listen} stopped"))?;
    Ok(Status::Clean)
}

fn proxy_section(config: &Config) -> Result<&ProxySection> {
    config.proxy.as_ref().context(
        "no [proxy] section in the configuration: add one with the environment to inject and a [proxy.clients.NAME] per service",
    )
}

fn open_audit_log(settings: &Settings, audit: &AuditConfig, fsync: AuditFsync) -> Result<LogSink> {
    // A failure shows when the log is opened.
    let _ = hogguard_fs::create_private_dir_all(hogguard_fs::parent_dir(&audit.path));
    LogSink::open(&audit.path, crate::audit::options(settings, audit)?, fsync).with_context(|| {
        format!(
            "the proxy audits every call, and the audit log {} cannot be opened",
            audit.path.display()
        )
    })
}

/// Reads the proxy's snapshot from the configuration and env files, afresh each time.
struct ConfigSource {
    config_path: Option<PathBuf>,
    environment: Option<String>,
}

impl SnapshotSource for ConfigSource {
    fn load(&self) -> Result<Snapshot, BoxError> {
        let settings = Settings::resolve(self.config_path.as_deref()).map_err(boxed)?;
        self.read(&settings).map_err(boxed)
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        // The configuration as found now (wherever it is), and the env files it names; a
        // reload reads both again.
        let Ok(settings) = Settings::resolve(self.config_path.as_deref()) else {
            return self.config_path.clone().into_iter().collect();
        };
        settings
            .config_path
            .iter()
            .cloned()
            .chain(
                settings
                    .config
                    .environments
                    .values()
                    .filter_map(|environment| environment.env_file.clone()),
            )
            .collect()
    }
}

/// An error of the binary's, with its chain, as the proxy library reports errors.
fn boxed(error: anyhow::Error) -> BoxError {
    error.into()
}

impl ConfigSource {
    fn read(&self, settings: &Settings) -> Result<Snapshot> {
        let config = &settings.config;
        let section = proxy_section(config)?;
        let environment = self
            .environment
            .clone()
            .or_else(|| section.environment.clone())
            .context("name the environment whose credentials the proxy injects: [proxy] environment, or --env")?;
        let credentials = environments::credentials(settings, Some(&environment))?;
        let personal_key = only_one(&credentials, &environment, "personal API key", |kind| {
            matches!(
                kind,
                CredentialKind::PersonalApiKey | CredentialKind::LegacyPersonalApiKey
            )
        })?;
        let secret_key = only_one(&credentials, &environment, "project secret key", |kind| {
            kind == CredentialKind::ProjectSecretApiKey
        })?;
        if personal_key.is_none() && secret_key.is_none() {
            bail!(
                "environment `{environment}` has no personal API key (phx_) or project secret key (phs_) with a value to inject"
            );
        }
        let mut clients = Vec::new();
        for (name, client) in &section.clients {
            let token = settings.require_variable(
                &client.token,
                Scope::AnyEnvironment,
                &format!("[proxy.clients.{name}] token names it"),
            )?;
            let scopes = client
                .scopes
                .iter()
                .map(|scope| scope.parse())
                .collect::<Result<_, _>>()
                .with_context(|| format!("proxy.clients.{name}.scopes"))?;
            clients.push(Client {
                name: name.clone(),
                token,
                scopes,
            });
        }
        Ok(Snapshot {
            environment,
            clients,
            personal_key,
            secret_key,
            table: Arc::new(scope_table(section)?),
        })
    }
}

/// The value of the one credential of the environment that `kind` accepts, if any.
fn only_one(
    credentials: &[environments::Credential],
    environment: &str,
    what: &str,
    kind: impl Fn(CredentialKind) -> bool,
) -> Result<Option<hogguard_secret::Secret>> {
    let found: Vec<&environments::Credential> = credentials
        .iter()
        .filter(|credential| credential.kind().is_some_and(&kind))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(one.value.clone()),
        several => bail!(
            "environment `{environment}` has {} credentials holding a {what} ({}): keep one for the proxy to inject",
            several.len(),
            several
                .iter()
                .map(|credential| credential.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The imported table when its file exists, else the built-in one.
pub(crate) fn scope_table(section: &ProxySection) -> Result<ScopeTable> {
    let Some(path) = section.scope_table.as_deref().filter(|path| path.exists()) else {
        return Ok(ScopeTable::built_in());
    };
    let text = hogguard_fs::read_regular_to_string(path, MAX_TABLE_BYTES)?;
    ScopeTable::parse(&text).with_context(|| format!("the scope table {}", path.display()))
}
