//! `hogguard init`: sets a project up so that `hogguard check` can pass: a commented
//! `hogguard.toml` naming the PostHog variables found in its env files (never their values),
//! the missing `.gitignore` lines, and on request a pre-commit hook.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hogguard_secret::CredentialKind;

use crate::Status;
use crate::cli::InitArgs;
use crate::config::DEFAULT_CONFIG;
use crate::printer::Printer;
use crate::repo::Repository;

/// Lines every project's `.gitignore` should have, with env files found added after them.
const IGNORE_LINES: &[&str] = &[".env", ".env.local", ".env.*.local", ".hogguard/"];

/// The hook file name an existing pre-commit hook is kept under when hogguard chains it.
const CHAINED_HOOK: &str = "pre-commit.before-hogguard";

pub(crate) fn run(args: InitArgs, printer: &Printer) -> Result<Status> {
    let root = PathBuf::from(".");
    // Everything that can fail without writing is settled first: no half-done init.
    let hooks = if args.pre_commit {
        Some(hooks_dir()?)
    } else {
        None
    };
    let env_files = env_files(&root)?;
    write_config(&root, &env_files, args.force, printer)?;
    update_gitignore(&root, &env_files, printer)?;
    if let Some(hooks) = hooks {
        install_hook(&hooks, printer)?;
    }
    Ok(Status::Clean)
}

/// The hooks directory git runs hooks from, `core.hooksPath` (husky, lefthook) included, as
/// git itself resolves it.
fn hooks_dir() -> Result<PathBuf> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .stderr(std::process::Stdio::null())
        .output()
        .context("--pre-commit runs git to find the hooks directory, and git did not start")?;
    if !output.status.success() {
        bail!("--pre-commit needs a git repository, and the current directory is not in one");
    }
    let path = String::from_utf8(output.stdout)
        .context("git named a hooks directory that is not UTF-8")?;
    Ok(PathBuf::from(path.trim_end_matches(['\n', '\r'])))
}

/// An env file in the project root and the environment it belongs to.
struct EnvFile {
    name: String,
    environment: &'static str,
    /// PostHog variables in it: name and the kind its value shows.
    variables: Vec<(String, Option<CredentialKind>)>,
}

fn environment_of(file: &str) -> Option<&'static str> {
    match file {
        ".env" | ".env.local" | ".env.development" | ".env.development.local" | ".env.dev" => {
            Some("development")
        }
        ".env.staging" | ".env.staging.local" | ".env.stage" => Some("staging"),
        ".env.production" | ".env.production.local" | ".env.prod" => Some("production"),
        _ => None,
    }
}

fn env_files(root: &Path) -> Result<Vec<EnvFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).context("cannot list the current directory")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(environment) = environment_of(&name) else {
            continue;
        };
        let text =
            std::fs::read_to_string(entry.path()).with_context(|| format!("cannot read {name}"))?;
        let parsed = hogguard_dotenv::parse(&text)
            .with_context(|| format!("{name} is not a valid env file"))?;
        let variables = parsed
            .entries()
            .iter()
            .filter(|e| e.key.to_ascii_uppercase().contains("POSTHOG"))
            .map(|e| (e.key.clone(), CredentialKind::from_value(&e.value)))
            .collect();
        files.push(EnvFile {
            name,
            environment,
            variables,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The credential name for a variable: by the kind its value shows, else by its own name.
fn credential_name(variable: &str, kind: Option<CredentialKind>) -> String {
    match kind {
        Some(CredentialKind::PersonalApiKey) => "personal_api_key".to_owned(),
        Some(CredentialKind::ProjectApiKey) => "project_api_key".to_owned(),
        Some(CredentialKind::ProjectSecretApiKey) => "project_secret_api_key".to_owned(),
        Some(CredentialKind::WebhookSecret) => "webhook_secret".to_owned(),
        _ => variable
            .to_ascii_lowercase()
            .trim_start_matches("posthog_")
            .to_owned(),
    }
}

fn write_config(root: &Path, env_files: &[EnvFile], force: bool, printer: &Printer) -> Result<()> {
    let path = root.join(DEFAULT_CONFIG);
    if path.exists() && !force {
        printer.note(&format!(
            "{DEFAULT_CONFIG} exists; left as it is (--force writes a new one)"
        ));
        return Ok(());
    }
    let mut text = String::from(
        "# hogguard.toml: names the variables that hold PostHog credentials, never their values.\n\
         # Docs: hogguard keys --help, hogguard check --help.\n\n\
         [posthog]\n\
         # host = \"https://eu.posthog.com\"   # US cloud by default; POSTHOG_HOST overrides\n\
         # project_id = 12345                  # production keys should be scoped to it\n",
    );
    for environment in ["development", "staging", "production"] {
        let files: Vec<&EnvFile> = env_files
            .iter()
            .filter(|f| f.environment == environment)
            .collect();
        if files.is_empty() {
            continue;
        }
        let (scopes, age) = match environment {
            "development" => ("[\"*:read\"]", "90d"),
            "staging" => ("[\"*:read\", \"feature_flag:write\"]", "60d"),
            _ => (
                "[\"feature_flag:read\"]   # only what production uses",
                "30d",
            ),
        };
        let _ = write!(
            text,
            "\n[environments.{environment}]\nenv_file = \"{}\"\nallowed_scopes = {scopes}\nmax_key_age = \"{age}\"\n\
             [environments.{environment}.credentials]\n",
            files[0].name
        );
        let mut names = std::collections::BTreeSet::new();
        for file in files {
            for (variable, kind) in &file.variables {
                let name = credential_name(variable, *kind);
                if names.insert(name.clone()) {
                    let _ = writeln!(text, "{name} = \"{variable}\"");
                }
            }
        }
    }
    text.push_str(
        "\n[audit]\npath = \".hogguard/audit.jsonl\"\n\
         # checkpoint_key = \"HOGGUARD_AUDIT_KEY\"              # HMAC key for the checkpoint\n\
         # posthog_project_api_key = \"POSTHOG_AUDIT_PROJECT_API_KEY\"   # ship entries to PostHog\n",
    );
    hogguard_fs::replace(&path, text.as_bytes(), hogguard_fs::DEFAULT_FILE_MODE)?;
    printer.note(&format!(
        "wrote {DEFAULT_CONFIG} ({} env files found)",
        env_files.len()
    ));
    Ok(())
}

fn update_gitignore(root: &Path, env_files: &[EnvFile], printer: &Printer) -> Result<()> {
    let path = root.join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).context("cannot read .gitignore"),
    };
    let repository = Repository::discover(root)?;
    let mut rules = repository
        .as_ref()
        .map(Repository::ignore_rules)
        .transpose()?;
    let present: Vec<&str> = existing.lines().map(str::trim).collect();
    let mut wanted: Vec<String> = IGNORE_LINES.iter().map(|l| (*l).to_owned()).collect();
    wanted.extend(env_files.iter().map(|f| f.name.clone()));
    let mut missing = Vec::new();
    for line in wanted {
        if present.contains(&line.as_str()) || missing.contains(&line) {
            continue;
        }
        // A line git's own rules already cover (`.env*` covers `.env.local`) needs no
        // repeating; a pattern is judged by names it stands for.
        let covered = match &mut rules {
            Some(rules) => {
                let mut covered = true;
                for (probe, is_dir) in probes(&line) {
                    covered &= if is_dir {
                        rules.is_ignored_dir(probe)?
                    } else {
                        rules.is_ignored(probe)?
                    };
                }
                covered
            }
            None => false,
        };
        if !covered {
            missing.push(line);
        }
    }
    if missing.is_empty() {
        printer.note(".gitignore already ignores the env files");
        return Ok(());
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# PostHog credentials and hogguard's local state (added by hogguard init)\n");
    for line in &missing {
        text.push_str(line);
        text.push('\n');
    }
    hogguard_fs::replace(&path, text.as_bytes(), hogguard_fs::DEFAULT_FILE_MODE)?;
    printer.note(&format!("added to .gitignore: {}", missing.join(" ")));
    Ok(())
}

/// Paths that an ignore line is meant to ignore (and whether each is a directory): itself,
/// or examples of what its glob stands for.
fn probes(line: &str) -> Vec<(&str, bool)> {
    match line {
        ".env.*.local" => vec![
            (".env.development.local", false),
            (".env.production.local", false),
        ],
        directory if directory.ends_with('/') => vec![(directory.trim_end_matches('/'), true)],
        file => vec![(file, false)],
    }
}

fn install_hook(hooks: &Path, printer: &Printer) -> Result<()> {
    std::fs::create_dir_all(hooks).with_context(|| format!("cannot create {}", hooks.display()))?;
    let hook = hooks.join("pre-commit");
    let mut script = String::from(
        "#!/bin/sh\n# Installed by hogguard init: block commits whose staged content holds a PostHog secret.\n\
         hogguard scan --staged -q || exit $?\n",
    );
    if let Ok(current) = std::fs::read_to_string(&hook) {
        if current.contains("hogguard scan --staged") {
            printer.note("the pre-commit hook already runs hogguard");
            return print_framework_snippet(printer);
        }
        let chained = hooks.join(CHAINED_HOOK);
        if chained.exists() {
            printer.note(&format!(
                "left the existing pre-commit hook alone: {} exists too; add `hogguard scan --staged` to your hook by hand",
                chained.display()
            ));
            return print_framework_snippet(printer);
        }
        std::fs::rename(&hook, &chained)
            .with_context(|| format!("cannot move the existing hook to {}", chained.display()))?;
        let _ = write!(
            script,
            "# The hook that was here before, still run:\nexec \"$(dirname \"$0\")/{CHAINED_HOOK}\" \"$@\"\n"
        );
        printer.note(&format!(
            "kept the existing hook as {CHAINED_HOOK}; the new hook runs it after hogguard"
        ));
    }
    hogguard_fs::replace(&hook, script.as_bytes(), hogguard_fs::EXECUTABLE_FILE_MODE)?;
    printer.note(&format!("installed {}", hook.display()));
    print_framework_snippet(printer)
}

fn print_framework_snippet(printer: &Printer) -> Result<()> {
    printer.note(
        "For the pre-commit framework, add to .pre-commit-config.yaml:\n\
         repos:\n  - repo: https://github.com/hogguard/hogguard\n    rev: v0.1.0\n    hooks:\n      - id: hogguard",
    );
    Ok(())
}
