//! What a command runs with, resolved once: the configuration file it found (or was given),
//! PostHog's hosts with the process environment's overrides, and the one way variables are
//! looked up (the process environment, then the env files the configuration names).
//!
//! Only commands that need the configuration resolve settings: `init` and `webhook
//! secret|sign|verify` work beside a broken `hogguard.toml`.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hogguard_secret::Secret;

use crate::config::{Config, DEFAULT_CONFIG};
use crate::untrusted;

/// The variable that names the configuration file when `--config` is not given.
pub(crate) const CONFIG_VARIABLE: &str = "HOGGUARD_CONFIG";
/// The variables that override `[posthog] host` and `[posthog] ingest_host`.
const HOST_VARIABLE: &str = "POSTHOG_HOST";
const INGEST_HOST_VARIABLE: &str = "POSTHOG_INGEST_HOST";

/// The settings of one run.
pub(crate) struct Settings {
    /// The configuration, with its paths relative to the current directory and the hosts
    /// overridden by the process environment; the defaults when no file was found.
    pub(crate) config: Config,
    /// The configuration file, when one was found or given.
    pub(crate) config_path: Option<PathBuf>,
    /// The project's root: the configuration file's directory (the current directory when
    /// there is none), where hogguard's own state (`.hogguard/`) lives.
    pub(crate) root: PathBuf,
    /// Each configured environment's env file, parsed on first lookup.
    env_files: Vec<EnvFile>,
}

/// Where a variable is looked for after the process environment.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// The env file of this environment (commands bound to one environment).
    Environment(&'a str),
    /// Every configured env file, in the order of the environments' names.
    AnyEnvironment,
}

struct EnvFile {
    environment: String,
    path: PathBuf,
    parsed: OnceCell<Option<hogguard_dotenv::DotEnv>>,
}

impl Settings {
    /// Finds and loads the configuration (`explicit`, else `$HOGGUARD_CONFIG`, else the
    /// nearest `hogguard.toml` from the current directory up to the repository's root),
    /// applies the process environment's host overrides, and makes the project's own rules
    /// mask everything printed from now on.
    pub(crate) fn resolve(explicit: Option<&Path>) -> Result<Settings> {
        let config_path = find_config(explicit)?;
        let mut config = match &config_path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        untrusted::use_project_rules(&config.scan.rules);
        for (variable, setting) in [
            (HOST_VARIABLE, &mut config.posthog.host),
            (INGEST_HOST_VARIABLE, &mut config.posthog.ingest_host),
        ] {
            if let Some(value) = process_variable(variable) {
                *setting = Some(value);
            }
        }
        let env_files = config
            .environments
            .iter()
            .filter_map(|(environment, settings)| {
                Some(EnvFile {
                    environment: environment.clone(),
                    path: settings.env_file.clone()?,
                    parsed: OnceCell::new(),
                })
            })
            .collect();
        // `hogguard.toml` has the empty parent, so that joined paths stay as people write them.
        let root = config_path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        Ok(Settings {
            config,
            config_path,
            root,
            env_files,
        })
    }

    /// Settings without a configuration, for the commands that must work beside a broken
    /// one: variables come from the process environment only.
    pub(crate) fn without_configuration() -> Settings {
        Settings {
            config: Config::default(),
            config_path: None,
            root: PathBuf::new(),
            env_files: Vec::new(),
        }
    }

    /// The value of `variable`: the process environment's, else the first env file in
    /// `scope` that sets it. Empty values count as unset.
    pub(crate) fn variable(&self, variable: &str, scope: Scope<'_>) -> Result<Option<Secret>> {
        if let Some(value) = process_variable(variable) {
            return Ok(Some(Secret::new(value)));
        }
        for file in self.env_files_in(scope) {
            let Some(env) = file.parsed()? else { continue };
            if let Some(value) = env.get(variable).map(str::trim).filter(|v| !v.is_empty()) {
                return Ok(Some(Secret::new(value)));
            }
        }
        Ok(None)
    }

    /// [`Settings::variable`], or an error that names where it looked and `purpose`.
    pub(crate) fn require_variable(
        &self,
        variable: &str,
        scope: Scope<'_>,
        purpose: &str,
    ) -> Result<Secret> {
        match self.variable(variable, scope)? {
            Some(value) => Ok(value),
            None => bail!(
                "{variable} is not set ({purpose}): looked in {}",
                self.places(scope)
            ),
        }
    }

    /// Where [`Settings::variable`] looks in `scope`, for people.
    pub(crate) fn places(&self, scope: Scope<'_>) -> String {
        let mut places = vec!["the process environment".to_owned()];
        places.extend(
            self.env_files_in(scope)
                .map(|file| file.path.display().to_string()),
        );
        match places.as_slice() {
            [only] => only.clone(),
            [first @ .., last] => format!("{} and {last}", first.join(", ")),
            [] => unreachable!("the process environment is always a place"),
        }
    }

    /// The env file of `environment`, parsed (once per command); `None` when it has none or
    /// the file does not exist.
    pub(crate) fn env_file(&self, environment: &str) -> Result<Option<&hogguard_dotenv::DotEnv>> {
        match self
            .env_files
            .iter()
            .find(|file| file.environment == environment)
        {
            Some(file) => file.parsed(),
            None => Ok(None),
        }
    }

    fn env_files_in<'s>(&'s self, scope: Scope<'s>) -> impl Iterator<Item = &'s EnvFile> {
        self.env_files.iter().filter(move |file| match scope {
            Scope::Environment(name) => file.environment == name,
            Scope::AnyEnvironment => true,
        })
    }
}

impl EnvFile {
    /// The parsed file; `None` when it does not exist (an environment without values).
    fn parsed(&self) -> Result<Option<&hogguard_dotenv::DotEnv>> {
        if let Some(parsed) = self.parsed.get() {
            return Ok(parsed.as_ref());
        }
        let parsed = crate::environments::read_env_file(&self.path)?;
        Ok(self.parsed.get_or_init(|| parsed).as_ref())
    }
}

/// A non-empty variable of the process environment.
fn process_variable(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The configuration file to load: `explicit`, `$HOGGUARD_CONFIG`, or the nearest
/// `hogguard.toml` from the current directory up to the root of the repository it is in
/// (only the current directory outside a repository), found the way git finds `.git`.
fn find_config(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(path) = explicit {
        return Ok(Some(path.to_owned()));
    }
    if let Some(path) = process_variable(CONFIG_VARIABLE) {
        return Ok(Some(PathBuf::from(path)));
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let inside_repository = cwd.ancestors().any(is_repository_root);
    // Relative candidates (`hogguard.toml`, `../hogguard.toml`), so that paths from the file
    // are shown relative to where the user is.
    let mut relative = PathBuf::new();
    for dir in cwd.ancestors() {
        let candidate = relative.join(DEFAULT_CONFIG);
        if candidate.is_file() {
            return Ok(Some(candidate));
        }
        if !inside_repository || is_repository_root(dir) {
            break;
        }
        relative.push("..");
    }
    Ok(None)
}

/// A directory holding `.git` (a directory, or a file in worktrees and submodules).
fn is_repository_root(dir: &Path) -> bool {
    dir.join(".git").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_read_as_a_list() {
        let settings = Settings {
            config: Config::default(),
            config_path: None,
            root: PathBuf::new(),
            env_files: ["production", "staging"]
                .into_iter()
                .map(|environment| EnvFile {
                    environment: environment.to_owned(),
                    path: PathBuf::from(format!(".env.{environment}")),
                    parsed: OnceCell::new(),
                })
                .collect(),
        };
        assert_eq!(
            settings.places(Scope::AnyEnvironment),
            "the process environment, .env.production and .env.staging"
        );
        assert_eq!(
            settings.places(Scope::Environment("staging")),
            "the process environment and .env.staging"
        );
        assert_eq!(
            settings.places(Scope::Environment("nowhere")),
            "the process environment"
        );
    }
}
