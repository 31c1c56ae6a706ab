//! What `init` learns from a project's env files and their templates (`.env.example` and the
//! like, whose values are placeholders): one environment per env file, named after it; the
//! variables that hold credentials; and the PostHog settings (host, project id) the files set.
//! Values are read to tell kinds and settings apart, and never written anywhere.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use hogguard_secret::CredentialKind;

use crate::environments;
use crate::repo::{self, Repository};

/// What the project's env files say.
#[derive(Debug, Default)]
pub(super) struct Project {
    /// Environment name to what it holds.
    pub(super) environments: BTreeMap<String, Environment>,
    /// `[posthog] host`, from a `*POSTHOG_HOST` variable (a capture host means its app host).
    pub(super) host: Option<Setting<String>>,
    /// `[posthog] project_id`, from a `*POSTHOG_PROJECT_ID` variable.
    pub(super) project_id: Option<Setting<u64>>,
    /// Env files found (not templates), slash paths from the project's root.
    pub(super) env_files: Vec<String>,
    /// Templates read for their variable names.
    pub(super) templates: Vec<String>,
}

/// One environment: its env file and the variables that hold its credentials.
#[derive(Debug)]
pub(super) struct Environment {
    /// Where its values live (a template's target when only the template exists).
    pub(super) env_file: String,
    /// Credential name to variable, in the order found.
    pub(super) credentials: Vec<(String, String)>,
}

/// A setting and the file it came from.
#[derive(Debug)]
pub(super) struct Setting<T> {
    pub(super) value: T,
    pub(super) source: String,
    /// Whether that file belongs to a production environment, whose word wins.
    from_production: bool,
}

/// Reads the env files and templates under `root` (sub-projects included, outside folders
/// `repository`'s git ignores and dependency folders).
pub(super) fn discover(root: &Path, repository: Option<&Repository>) -> Result<Project> {
    let found = match repository {
        Some(repository) => {
            let prefix = repository.relative(root)?.unwrap_or_default();
            let mut rules = repository.ignore_rules()?;
            repo::find_env_files(root, true, |dir| {
                let from_root = if prefix.is_empty() {
                    dir.to_owned()
                } else {
                    format!("{prefix}/{dir}")
                };
                rules.is_ignored_dir(&from_root)
            })?
        }
        None => repo::find_env_files(root, true, |_| Ok(false))?,
    };
    let mut project = Project::default();
    // Real files first, so that a template only adds the names its target lacks.
    let (templates, files): (Vec<String>, Vec<String>) = found
        .into_iter()
        .partition(|path| repo::template_target(file_name(path)).is_some());
    for path in files.iter().chain(&templates) {
        let name = file_name(path);
        let (target, template) = match repo::template_target(name) {
            Some(target) => (sibling(path, target), true),
            None => (path.clone(), false),
        };
        // One that vanished since the walk found it has nothing to add.
        let Some(parsed) = environments::read_env_file(&root.join(path))? else {
            continue;
        };
        let environment = project
            .environments
            .entry(environment_name(&target))
            .or_insert_with(|| Environment {
                env_file: target.clone(),
                credentials: Vec::new(),
            });
        for entry in parsed.entries() {
            let role = Role::of(&entry.key, &entry.value, template);
            match role {
                Role::Credential(kind) => environment.add(&entry.key, kind),
                Role::Host(host) => {
                    choose(&mut project.host, host, path, &target);
                }
                Role::ProjectId(id) => {
                    choose(&mut project.project_id, id, path, &target);
                }
                Role::Other => {}
            }
        }
        if template {
            project.templates.push(path.clone());
        } else {
            project.env_files.push(path.clone());
        }
    }
    Ok(project)
}

impl Environment {
    /// Adds `variable` under a credential name of its own: the kind's name, or the variable's
    /// when that is taken (two personal keys in one file are two credentials).
    fn add(&mut self, variable: &str, kind: Option<CredentialKind>) {
        if self.credentials.iter().any(|(_, v)| v == variable) {
            return;
        }
        let by_kind = kind.and_then(|kind| match kind {
            CredentialKind::PersonalApiKey | CredentialKind::LegacyPersonalApiKey => {
                Some("personal_api_key")
            }
            CredentialKind::ProjectApiKey => Some("project_api_key"),
            CredentialKind::ProjectSecretApiKey => Some("project_secret_api_key"),
            CredentialKind::WebhookSecret => Some("webhook_secret"),
            _ => None,
        });
        let taken = |name: &str| self.credentials.iter().any(|(n, _)| n == name);
        let name = match by_kind {
            Some(name) if !taken(name) => name.to_owned(),
            _ => {
                let base = name_of_variable(variable);
                let mut name = base.clone();
                let mut n = 2;
                while taken(&name) {
                    name = format!("{base}_{n}");
                    n += 1;
                }
                name
            }
        };
        self.credentials.push((name, variable.to_owned()));
    }
}

/// What a variable is to hogguard.
#[derive(Debug, PartialEq)]
enum Role {
    /// A credential, with the kind its value shows (none for a template's placeholder).
    Credential(Option<CredentialKind>),
    /// PostHog's host, as the app host to talk to.
    Host(String),
    /// The PostHog project id.
    ProjectId(u64),
    /// Nothing hogguard keeps.
    Other,
}

impl Role {
    /// Judges a variable by its value first (a PostHog key is a credential whatever its
    /// name), then by its name: hosts and project ids are settings, and only key, secret and
    /// token variables of PostHog are credentials. A template's values are placeholders,
    /// except a host URL, which templates usually carry for real.
    fn of(name: &str, value: &str, template: bool) -> Role {
        let value = value.trim();
        let kind = (!template)
            .then(|| CredentialKind::from_value(value))
            .flatten();
        if kind.is_some() {
            return Role::Credential(kind);
        }
        let upper = name.to_ascii_uppercase();
        if !upper.contains("POSTHOG") {
            return Role::Other;
        }
        if upper.ends_with("HOST") || upper.ends_with("_URL") {
            return hogguard_posthog::Hosts::new(value).map_or(Role::Other, |hosts| {
                Role::Host(hosts.api().as_str().to_owned())
            });
        }
        if upper.ends_with("PROJECT_ID") {
            return match value.parse() {
                Ok(id) if !template => Role::ProjectId(id),
                _ => Role::Other,
            };
        }
        if ["KEY", "SECRET", "TOKEN"]
            .iter()
            .any(|word| upper.contains(word))
        {
            return Role::Credential(environments::kind_by_name(name));
        }
        Role::Other
    }
}

/// Keeps the first value found for a setting, unless a production file says otherwise.
fn choose<T>(setting: &mut Option<Setting<T>>, value: T, path: &str, target: &str) {
    let from_production = environment_name(target).ends_with("production");
    let replace = match setting {
        None => true,
        Some(current) => from_production && !current.from_production,
    };
    if replace {
        *setting = Some(Setting {
            value,
            source: path.to_owned(),
            from_production,
        });
    }
}

/// The environment an env file belongs to, from its name and folder: `.env` is
/// development, `.env.local` is local, `.env.prod` production, `.env.staging.local`
/// staging-local; in a sub-project the folder comes first (`apps-web-production`).
pub(super) fn environment_name(path: &str) -> String {
    let name = file_name(path);
    let rest = name.strip_prefix(".env").unwrap_or(name);
    let mut parts: Vec<&str> = rest.split('.').filter(|p| !p.is_empty()).collect();
    let local = parts.last() == Some(&"local") && parts.len() > 1;
    if local {
        parts.pop();
    }
    let base = match parts.as_slice() {
        [] => "development".to_owned(),
        ["local"] => "local".to_owned(),
        [one] => canonical(one),
        several => canonical(&several.join("-")),
    };
    let base = if local { format!("{base}-local") } else { base };
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{}-{base}", slug(dir)),
        None => base,
    }
}

fn canonical(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "prod" | "production" => "production".to_owned(),
        "dev" | "development" | "develop" => "development".to_owned(),
        "stage" | "staging" => "staging".to_owned(),
        other => slug(other),
    }
}

/// Letters and digits, anything else a dash: a name that needs no quoting in TOML.
fn slug(text: &str) -> String {
    let slug: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.trim_matches('-').to_owned()
}

/// A credential name from a variable: lowercase, without framework and PostHog prefixes.
fn name_of_variable(variable: &str) -> String {
    let mut name = variable.to_ascii_lowercase();
    for prefix in [
        "next_public_",
        "vite_",
        "react_app_",
        "nuxt_public_",
        "expo_public_",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_owned();
        }
    }
    let name = name.strip_prefix("posthog_").unwrap_or(&name).to_owned();
    if name.is_empty() {
        "credential".to_owned()
    } else {
        name
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// `name` in the folder of `path`.
fn sibling(path: &str, name: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogguard_testkit::keys::{self, Prefix};

    #[test]
    fn environments_are_named_after_their_files() {
        for (path, environment) in [
            (".env", "development"),
            (".env.local", "local"),
            (".env.development", "development"),
            (".env.development.local", "development-local"),
            (".env.prod", "production"),
            (".env.staging", "staging"),
            (".env.test", "test"),
            ("apps/web/.env.production", "apps-web-production"),
            ("examples/next app/.env", "examples-next-app-development"),
        ] {
            assert_eq!(environment_name(path), environment, "{path}");
        }
    }

    #[test]
    fn settings_are_not_credentials() {
        let personal = keys::current(Prefix::Personal);
        let public = keys::current(Prefix::Project);
        assert_eq!(
            Role::of(
                "NEXT_PUBLIC_POSTHOG_HOST",
                "https://eu.i.posthog.com",
                false
            ),
            Role::Host("https://eu.posthog.com".to_owned())
        );
        assert_eq!(
            Role::of("POSTHOG_HOST", "https://posthog.internal", false),
            Role::Host("https://posthog.internal".to_owned())
        );
        assert_eq!(
            Role::of("POSTHOG_PROJECT_ID", "12345", false),
            Role::ProjectId(12345)
        );
        assert_eq!(
            Role::of("POSTHOG_PROJECT_ID", "<your id>", true),
            Role::Other
        );
        assert_eq!(Role::of("POSTHOG_DEBUG", "true", false), Role::Other);
        assert_eq!(
            Role::of("POSTHOG_CLI_TOKEN", &personal, false),
            Role::Credential(Some(CredentialKind::PersonalApiKey))
        );
        // A PostHog key is a credential whatever the variable is called.
        assert_eq!(
            Role::of("NEXT_PUBLIC_PH_KEY", &public, false),
            Role::Credential(Some(CredentialKind::ProjectApiKey))
        );
        assert_eq!(
            Role::of("POSTHOG_PERSONAL_API_KEY", "phx_your_key_here", true),
            Role::Credential(Some(CredentialKind::PersonalApiKey))
        );
        assert_eq!(
            Role::of("NEXT_PUBLIC_POSTHOG_KEY", "<ph_project_token>", true),
            Role::Credential(Some(CredentialKind::ProjectApiKey))
        );
        assert_eq!(
            Role::of("POSTHOG_CLI_TOKEN", "", true),
            Role::Credential(None)
        );
        assert_eq!(Role::of("DATABASE_URL", "postgres://x", false), Role::Other);
    }

    #[test]
    fn two_keys_of_one_kind_are_two_credentials() {
        let mut environment = Environment {
            env_file: ".env".to_owned(),
            credentials: Vec::new(),
        };
        environment.add("POSTHOG_API_KEY", Some(CredentialKind::PersonalApiKey));
        environment.add("POSTHOG_CLI_TOKEN", Some(CredentialKind::PersonalApiKey));
        environment.add(
            "NEXT_PUBLIC_POSTHOG_KEY",
            Some(CredentialKind::ProjectApiKey),
        );
        environment.add("POSTHOG_API_KEY", Some(CredentialKind::PersonalApiKey));
        assert_eq!(
            environment.credentials,
            [
                ("personal_api_key".to_owned(), "POSTHOG_API_KEY".to_owned()),
                ("cli_token".to_owned(), "POSTHOG_CLI_TOKEN".to_owned()),
                (
                    "project_api_key".to_owned(),
                    "NEXT_PUBLIC_POSTHOG_KEY".to_owned()
                ),
            ]
        );
    }
}
