//! `hogguard.toml`: the project's configuration. It names variables, never holds values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hogguard_scan::CustomRule;
use serde::Deserialize;

/// The configuration file's name, looked for from the current directory up to the
/// repository's root when `--config` is not given.
pub(crate) const DEFAULT_CONFIG: &str = "hogguard.toml";

/// A configuration file larger than this is not one (it names variables, never holds data).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The sections a configuration file may have; later commands read the others.
const SECTIONS: &[&str] = &["posthog", "environments", "audit", "scan", "proxy"];

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Config {
    /// `[posthog]`: where PostHog is.
    #[serde(default)]
    pub(crate) posthog: PostHogConfig,
    /// `[environments.NAME]`: where each environment's credentials live, and its policy.
    #[serde(default)]
    pub(crate) environments: BTreeMap<String, EnvironmentConfig>,
    /// `[scan]`: scanner settings.
    #[serde(default)]
    pub(crate) scan: ScanConfig,
    /// `[audit]`: the audit log; none when unset.
    pub(crate) audit: Option<AuditConfig>,
    /// `[proxy]`: the PostHog API proxy; none when unset.
    pub(crate) proxy: Option<ProxySection>,
}

/// `[proxy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProxySection {
    /// Where the proxy listens; loopback by default.
    #[serde(default = "default_proxy_listen")]
    pub(crate) listen: std::net::SocketAddr,
    /// The environment whose credentials are injected.
    pub(crate) environment: Option<String>,
    /// `required` (a call whose audit entry cannot be written is refused) or `best-effort`.
    #[serde(default)]
    pub(crate) audit: ProxyAudit,
    /// `background` (each call's entry is written before its answer and fsynced right
    /// after) or `before-answer` (fsynced before it).
    #[serde(default)]
    pub(crate) audit_fsync: hogguard_proxy::AuditFsync,
    /// The scope table written by `hogguard scopes import`, relative to the configuration
    /// file; the built-in table when unset and the default file does not exist.
    pub(crate) scope_table: Option<PathBuf>,
    /// The largest request body forwarded, in bytes.
    pub(crate) body_limit: Option<usize>,
    /// `[proxy.clients.NAME]`: each service's token variable and scopes.
    #[serde(default)]
    pub(crate) clients: BTreeMap<String, ProxyClient>,
}

/// `[proxy] audit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ProxyAudit {
    /// Fail closed.
    #[default]
    Required,
    /// Forward even when the entry cannot be written.
    BestEffort,
}

/// `[proxy.clients.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProxyClient {
    /// The variable holding the client's token (never the token).
    pub(crate) token: String,
    /// The scopes the client may use.
    pub(crate) scopes: Vec<String>,
}

fn default_proxy_listen() -> std::net::SocketAddr {
    hogguard_proxy::DEFAULT_LISTEN
}

/// Where `hogguard scopes import` writes and the proxy looks when `scope_table` is unset,
/// relative to the configuration file.
pub(crate) const DEFAULT_SCOPE_TABLE: &str = ".hogguard/posthog-scopes.toml";

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditConfig {
    /// The log file, relative to the configuration file.
    #[serde(default = "default_audit_path")]
    pub(crate) path: PathBuf,
    /// Variable holding the HMAC key that signs the log's checkpoint.
    pub(crate) checkpoint_key: Option<String>,
    /// Variable holding the `phc_` project key the entries are shipped to PostHog with.
    pub(crate) posthog_project_api_key: Option<String>,
    /// Refuse to change credentials when the log cannot be written (fail closed).
    #[serde(default)]
    pub(crate) required: bool,
}

fn default_audit_path() -> PathBuf {
    PathBuf::from(".hogguard/audit.jsonl")
}

impl Default for AuditConfig {
    /// The section as if written with nothing but defaults.
    fn default() -> Self {
        AuditConfig {
            path: default_audit_path(),
            checkpoint_key: None,
            posthog_project_api_key: None,
            required: false,
        }
    }
}

/// `[posthog]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostHogConfig {
    /// The private API host (US cloud when unset); `POSTHOG_HOST` overrides it.
    pub(crate) host: Option<String>,
    /// The capture host (derived from `host` when unset); `POSTHOG_INGEST_HOST` overrides it.
    pub(crate) ingest_host: Option<String>,
    /// The project hogguard works on: production keys should be scoped to it.
    pub(crate) project_id: Option<u64>,
    /// Variable holding a personal API key with `project:write`, to rotate `phs_` keys.
    pub(crate) admin_key: Option<String>,
}

impl PostHogConfig {
    /// The hosts to talk to: this section's (with the process environment's overrides, which
    /// the settings apply when they load the file), else US cloud.
    pub(crate) fn hosts(&self) -> Result<hogguard_posthog::Hosts> {
        let from_file = hogguard_posthog::HostSettings {
            host: self.host.clone(),
            ingest_host: self.ingest_host.clone(),
        };
        hogguard_posthog::Hosts::resolve(&hogguard_posthog::HostSettings::default(), &from_file)
            .context("invalid PostHog host")
    }
}

/// `[environments.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentConfig {
    /// The dotenv file holding the values, relative to the configuration file; the process
    /// environment when unset.
    pub(crate) env_file: Option<PathBuf>,
    /// Scopes keys of this environment may hold: `object:action`, `*:read`, `*:write`, `*`.
    pub(crate) allowed_scopes: Option<Vec<String>>,
    /// How old a key may grow before it must be rotated, e.g. `30d`, `12w`.
    pub(crate) max_key_age: Option<String>,
    /// Credential name to the name of the variable holding it (never the value).
    #[serde(default)]
    pub(crate) credentials: BTreeMap<String, String>,
    /// A command that checks the app works with a new key (its health check), run during a
    /// rotation after the new key is stored and before the old one is retired.
    pub(crate) verify_command: Option<String>,
    /// A secret manager instead of `env_file`: the new value goes to `write` on standard
    /// input and is read back with `read`.
    pub(crate) store: Option<CommandStore>,
}

/// `store = { write = "...", read = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandStore {
    /// Command that stores the value it reads on standard input.
    pub(crate) write: String,
    /// Command that prints the stored value.
    pub(crate) read: String,
}

/// `[scan]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanConfig {
    /// `[[scan.rules]]`: custom rules.
    #[serde(default)]
    pub(crate) rules: Vec<CustomRule>,
    /// A baseline applied when `--baseline` is not given, relative to the configuration file.
    #[serde(default)]
    pub(crate) baseline: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration file at `path`. Relative paths in it are resolved against its
    /// directory.
    pub(crate) fn load(path: &Path) -> Result<Config> {
        let text = hogguard_fs::read_regular_to_string(path, MAX_CONFIG_BYTES)?;
        let mut config = Config::parse(&text)
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        if let Some(baseline) = &mut config.scan.baseline {
            *baseline = dir.join(&*baseline);
        }
        if let Some(audit) = &mut config.audit {
            audit.path = dir.join(&audit.path);
        }
        if let Some(proxy) = &mut config.proxy {
            proxy.scope_table = Some(
                dir.join(
                    proxy
                        .scope_table
                        .as_deref()
                        .unwrap_or(Path::new(DEFAULT_SCOPE_TABLE)),
                ),
            );
        }
        for environment in config.environments.values_mut() {
            if let Some(env_file) = &mut environment.env_file {
                *env_file = dir.join(&*env_file);
            }
        }
        Ok(config)
    }

    /// Parses and checks a configuration document.
    pub(crate) fn parse(text: &str) -> Result<Config> {
        let table: toml::Table = toml::from_str(text)?;
        if let Some(unknown) = table.keys().find(|key| !SECTIONS.contains(&key.as_str())) {
            bail!(
                "unknown section `{unknown}` (expected one of: {})",
                SECTIONS.join(", ")
            );
        }
        let config: Config = table.try_into()?;
        refuse_values(text, &config)?;
        for rule in &config.scan.rules {
            if rule.id.trim().is_empty() {
                bail!("a [[scan.rules]] entry has an empty id");
            }
        }
        Ok(config)
    }
}

/// The configuration names variables; a credential written into it is an error, wherever it
/// stands, and so is a credential entry that is not a variable name.
fn refuse_values(text: &str, config: &Config) -> Result<()> {
    let scanner = hogguard_scan::Scanner::new(&[], hogguard_scan::ScanOptions::default())?;
    let found = scanner.scan_reader("hogguard.toml", text.as_bytes())?;
    if let Some(finding) = found.findings.first() {
        bail!(
            "line {} holds a credential ({}); hogguard.toml must name the variable that holds it, \
             never the value",
            finding.line,
            finding.masked
        );
    }
    if config
        .posthog
        .admin_key
        .as_deref()
        .is_some_and(|v| !is_variable_name(v))
    {
        bail!("posthog.admin_key must be the name of an environment variable, not a value");
    }
    if let Some(audit) = &config.audit {
        for (field, variable) in [
            ("checkpoint_key", &audit.checkpoint_key),
            ("posthog_project_api_key", &audit.posthog_project_api_key),
        ] {
            if variable.as_deref().is_some_and(|v| !is_variable_name(v)) {
                bail!("audit.{field} must be the name of an environment variable, not a value");
            }
        }
    }
    for (env, environment) in &config.environments {
        for (name, variable) in &environment.credentials {
            if !is_variable_name(variable) {
                bail!(
                    "environments.{env}.credentials.{name} must be the name of an environment \
                     variable (letters, digits, `_`), not a value"
                );
            }
        }
        if let Some(age) = &environment.max_key_age {
            crate::age::parse(age).with_context(|| format!("environments.{env}.max_key_age"))?;
        }
    }
    if let Some(proxy) = &config.proxy {
        check_proxy(proxy, config)?;
    }
    Ok(())
}

/// `[proxy]`: clients name variables and hold scopes; the environment exists.
fn check_proxy(proxy: &ProxySection, config: &Config) -> Result<()> {
    if let Some(environment) = &proxy.environment
        && !config.environments.contains_key(environment)
    {
        bail!("proxy.environment names `{environment}`, which has no [environments.{environment}]");
    }
    for (name, client) in &proxy.clients {
        if !is_variable_name(&client.token) {
            bail!(
                "proxy.clients.{name}.token must be the name of an environment variable, not a value"
            );
        }
        if client.scopes.is_empty() {
            bail!("proxy.clients.{name}.scopes is empty: the client could call nothing");
        }
        for scope in &client.scopes {
            scope
                .parse::<hogguard_proxy::Scope>()
                .with_context(|| format!("proxy.clients.{name}.scopes"))?;
        }
    }
    if proxy.body_limit == Some(0) {
        bail!("proxy.body_limit must be more than 0");
    }
    Ok(())
}

fn is_variable_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_custom_rules() {
        let config = Config::parse(
            r#"
            [[scan.rules]]
            id = "internal-token"
            regex = 'itk_([a-z0-9]{32})'
            keywords = ["itk_"]
            min_entropy = 3.5
            severity = "critical"
            "#,
        )
        .unwrap();
        let rule = &config.scan.rules[0];
        assert_eq!(rule.id, "internal-token");
        assert!(rule.secret);
        assert_eq!(rule.severity, hogguard_scan::Severity::Critical);
    }

    #[test]
    fn environments_name_variables_never_values() {
        let config = Config::parse(
            "[environments.production]\nenv_file = '.env.production'\nmax_key_age = '30d'\n\
             [environments.production.credentials]\npersonal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n",
        )
        .unwrap();
        let production = &config.environments["production"];
        assert_eq!(
            production.credentials["personal_api_key"],
            "POSTHOG_PERSONAL_API_KEY"
        );
        let key = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Personal);
        let error = Config::parse(&format!(
            "[environments.production.credentials]\npersonal_api_key = '{key}'\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("line 2 holds a credential"), "{error}");
        assert!(!error.contains(&key));
        let error =
            Config::parse("[environments.dev.credentials]\nk = 'not a name'\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("must be the name of an environment variable")
        );
        assert!(Config::parse("[environments.dev]\nmax_key_age = 'soon'\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panic(text in "(?s).{0,400}") {
            let _ = Config::parse(&text);
        }

        #[test]
        fn any_credentials_table_is_parsed_or_refused(name in "[a-z_]{1,12}", value in "\\PC{0,60}") {
            let text = format!("[environments.e.credentials]\n{name} = {value:?}\n");
            if let Ok(config) = Config::parse(&text) {
                let variable = &config.environments["e"].credentials[&name];
                proptest::prop_assert!(is_variable_name(variable));
            }
        }
    }

    #[test]
    fn the_proxy_section_names_variables_and_holds_scopes() {
        let config = Config::parse(
            "[environments.production]\n[proxy]\nenvironment = 'production'\n\
             [proxy.clients.reader]\ntoken = 'READER_TOKEN'\nscopes = ['feature_flag:read', '*:read']\n",
        )
        .unwrap();
        let proxy = config.proxy.unwrap();
        assert_eq!(proxy.listen.to_string(), "127.0.0.1:8788");
        assert_eq!(proxy.audit, ProxyAudit::Required);
        assert_eq!(proxy.audit_fsync, hogguard_proxy::AuditFsync::Background);
        let strict = Config::parse("[proxy]\naudit_fsync = 'before-answer'\n").unwrap();
        assert_eq!(
            strict.proxy.unwrap().audit_fsync,
            hogguard_proxy::AuditFsync::BeforeAnswer
        );
        assert_eq!(proxy.clients["reader"].token, "READER_TOKEN");
        for (text, expected) in [
            (
                "[proxy]\nenvironment = 'nowhere'\n",
                "has no [environments.nowhere]",
            ),
            (
                "[proxy.clients.a]\ntoken = 'hgp_x y'\nscopes = ['*']\n",
                "must be the name of an environment variable",
            ),
            (
                "[proxy.clients.a]\ntoken = 'A'\nscopes = []\n",
                "scopes is empty",
            ),
            (
                "[proxy.clients.a]\ntoken = 'A'\nscopes = ['flags']\n",
                "proxy.clients.a.scopes",
            ),
            ("[proxy]\naudit = 'sometimes'\n", "unknown variant"),
            ("[proxy]\naudit_fsync = 'never'\n", "unknown variant"),
            ("[proxy]\nlisten = 'everywhere'\n", "invalid socket address"),
        ] {
            let error = format!("{:#}", Config::parse(text).unwrap_err());
            assert!(error.contains(expected), "{error} for {text}");
        }
    }

    #[test]
    fn rejects_unknown_keys_and_bad_severity() {
        assert!(Config::parse("[scan]\nrulez = []").is_err());
        assert!(
            Config::parse("[scann]")
                .unwrap_err()
                .to_string()
                .contains("unknown section")
        );
        assert!(Config::parse("[posthog]\nhost = 'https://eu.posthog.com'").is_ok());
        assert!(Config::parse("[[scan.rules]]\nid='x'\nregex='y'\nseverity='huge'").is_err());
        assert!(Config::parse("[[scan.rules]]\nid=''\nregex='y'").is_err());
    }
}
