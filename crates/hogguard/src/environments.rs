//! The credentials of each configured environment, with their values read from the
//! environment's dotenv file or, without one, from the process environment.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hogguard_secret::{CredentialKind, Secret};

use crate::config::EnvironmentConfig;
use crate::settings::Settings;

/// One configured credential and its value, if it has one.
#[derive(Debug)]
pub(crate) struct Credential {
    /// The environment it belongs to.
    pub(crate) environment: String,
    /// Its name in `[environments.NAME.credentials]`.
    pub(crate) name: String,
    /// The variable that holds it.
    pub(crate) variable: String,
    /// Where the value was looked for, for people.
    pub(crate) source: String,
    /// The value; `None` when the variable is unset or empty.
    pub(crate) value: Option<Secret>,
}

impl Credential {
    /// The kind its value shows, judged by prefix; webhook secrets and the like by name.
    pub(crate) fn kind(&self) -> Option<CredentialKind> {
        let value = self.value.as_ref()?;
        CredentialKind::from_value(value.expose()).or_else(|| {
            if self.name.contains("webhook") {
                Some(CredentialKind::WebhookSecret)
            } else if self.name.contains("personal") && value.expose().len() == 43 {
                Some(CredentialKind::LegacyPersonalApiKey)
            } else {
                None
            }
        })
    }
}

/// The kind a credential's name suggests (`POSTHOG_PERSONAL_API_KEY`, `webhook_secret`), for
/// when its value shows none (a template's placeholder, an unset variable).
pub(crate) fn kind_by_name(name: &str) -> Option<CredentialKind> {
    let name = name.to_ascii_lowercase();
    if name.contains("webhook") {
        Some(CredentialKind::WebhookSecret)
    } else if name.contains("personal") {
        Some(CredentialKind::PersonalApiKey)
    } else if name.contains("secret") {
        Some(CredentialKind::ProjectSecretApiKey)
    } else if name.contains("public")
        || name.contains("project_api_key")
        || name.ends_with("posthog_key")
    {
        Some(CredentialKind::ProjectApiKey)
    } else {
        None
    }
}

/// Every credential of the configured environments, or of `only` when given; env files are
/// read once per command, through `settings`.
pub(crate) fn credentials(settings: &Settings, only: Option<&str>) -> Result<Vec<Credential>> {
    let config = &settings.config;
    if let Some(name) = only
        && !config.environments.contains_key(name)
    {
        let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
        bail!(
            "no environment `{name}` in the configuration (known: {})",
            known.join(", ")
        );
    }
    let mut credentials = Vec::new();
    for (environment, environment_settings) in &config.environments {
        if only.is_some_and(|name| name != environment) {
            continue;
        }
        let values = Values::of(settings, environment, environment_settings)?;
        for (name, variable) in &environment_settings.credentials {
            credentials.push(Credential {
                environment: environment.clone(),
                name: name.clone(),
                variable: variable.clone(),
                source: values.source(),
                value: values.get(variable),
            });
        }
    }
    Ok(credentials)
}

/// An env file larger than this is not one.
const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// The env file at `path`, parsed; `None` when there is no such file. A device, FIFO or
/// oversized file is an error, never read whole.
pub(crate) fn read_env_file(path: &Path) -> Result<Option<hogguard_dotenv::DotEnv>> {
    let text = match hogguard_fs::read_regular_to_string(path, MAX_ENV_FILE_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    hogguard_dotenv::parse(&text)
        .map(Some)
        .with_context(|| format!("{} is not a valid env file", path.display()))
}

/// Where an environment's values come from.
enum Values<'a> {
    File {
        path: String,
        /// `None` when the file does not exist.
        env: Option<&'a hogguard_dotenv::DotEnv>,
    },
    Process,
}

impl<'a> Values<'a> {
    fn of(
        settings: &'a Settings,
        environment: &str,
        environment_settings: &EnvironmentConfig,
    ) -> Result<Values<'a>> {
        let Some(path) = &environment_settings.env_file else {
            return Ok(Values::Process);
        };
        Ok(Values::File {
            path: path.display().to_string(),
            // A missing file is an environment without values, which the report shows.
            env: settings.env_file(environment)?,
        })
    }

    fn source(&self) -> String {
        match self {
            Values::File { path, .. } => path.clone(),
            Values::Process => "process environment".to_owned(),
        }
    }

    fn get(&self, variable: &str) -> Option<Secret> {
        let value = match self {
            Values::File { env, .. } => env.as_ref()?.get(variable).map(str::to_owned),
            Values::Process => std::env::var(variable).ok(),
        }?;
        let value = value.trim().to_owned();
        (!value.is_empty()).then(|| Secret::new(value))
    }
}
