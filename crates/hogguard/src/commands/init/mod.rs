//! `hogguard init`: sets a project up so that `hogguard check` can pass: a commented
//! `hogguard.toml` naming the PostHog variables found in its env files and their templates
//! (never their values), the missing `.gitignore` lines, and on request a pre-commit hook.

mod project;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::project::Project;

use crate::Status;
use crate::cli::InitArgs;
use crate::config::DEFAULT_CONFIG;
use crate::printer::{self, Printer};
use crate::repo::Repository;

/// Lines every project's `.gitignore` should have, with env files found added after them.
const IGNORE_LINES: &[&str] = &[
    ".env",
    ".env.local",
    ".env.*.local",
    ".hogguard/",
    // The lock files rotations keep beside env files.
    ".*.hogguard-lock",
];

/// The pre-commit hook: it fails closed, and says why, when hogguard is not installed.
const HOOK_SCRIPT: &str = "#!/bin/sh
# Installed by hogguard init: block commits whose staged content holds a PostHog secret.
if ! command -v hogguard >/dev/null 2>&1; then
  echo 'hogguard pre-commit hook: hogguard is not on PATH, so the staged files cannot be checked for PostHog secrets.' >&2
  echo 'Install it (cargo install --locked --path crates/hogguard in its repository) or put it on PATH, then commit again.' >&2
  exit 1
fi
hogguard scan --staged -q
status=$?
if [ \"$status\" -ne 0 ]; then
  if [ \"$status\" -eq 1 ]; then
    echo 'hogguard pre-commit hook: commit blocked: the staged changes hold a PostHog secret (listed above).' >&2
    echo 'Move it to an env file git ignores and read it from the environment; a test fixture goes in a baseline (hogguard scan --help).' >&2
  fi
  exit \"$status\"
fi
";

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
    let repository = Repository::discover(&root)?;
    let project = project::discover(&root, repository.as_ref())?;
    write_config(&root, &project, args.force, printer)?;
    update_gitignore(&root, repository.as_ref(), &project.env_files, printer)?;
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

fn write_config(root: &Path, project: &Project, force: bool, printer: &Printer) -> Result<()> {
    let path = root.join(DEFAULT_CONFIG);
    if path.exists() && !force {
        printer.note(&format!(
            "{DEFAULT_CONFIG} exists; left as it is (--force writes a new one)"
        ));
        return Ok(());
    }
    hogguard_fs::replace(
        &path,
        config_text(project).as_bytes(),
        hogguard_fs::DEFAULT_FILE_MODE,
    )?;
    let mut summary = format!(
        "wrote {DEFAULT_CONFIG}: {} from {}",
        printer::plural(project.environments.len(), "environment", "environments"),
        printer::plural(project.env_files.len(), "env file", "env files"),
    );
    if !project.templates.is_empty() {
        let _ = write!(
            summary,
            " and {}",
            printer::plural(project.templates.len(), "template", "templates")
        );
    }
    for (name, environment) in &project.environments {
        let _ = write!(
            summary,
            "\n  {name}: {} ({})",
            environment.env_file,
            printer::plural(environment.credentials.len(), "credential", "credentials")
        );
    }
    printer.note(&summary);
    Ok(())
}

/// The commented configuration for `project`.
fn config_text(project: &Project) -> String {
    let mut text = String::from(
        "# hogguard.toml: names the variables that hold PostHog credentials, never their values.\n\
         # Docs: hogguard keys --help, hogguard check --help.\n\n[posthog]\n",
    );
    match &project.host {
        Some(host) => {
            let _ = writeln!(text, "host = {:?}   # from {}", host.value, host.source);
        }
        None => text.push_str(
            "# host = \"https://eu.posthog.com\"   # US cloud by default; POSTHOG_HOST overrides\n",
        ),
    }
    match &project.project_id {
        Some(id) => {
            let _ = writeln!(
                text,
                "project_id = {}   # from {}; production keys should be scoped to it",
                id.value, id.source
            );
        }
        None => text.push_str(
            "# project_id = 12345                  # production keys should be scoped to it\n",
        ),
    }
    for (name, environment) in &project.environments {
        let (scopes, age) = policy_for(name);
        let _ = write!(
            text,
            "\n[environments.{name}]\nenv_file = {:?}\nallowed_scopes = {scopes}\nmax_key_age = \"{age}\"\n\
             [environments.{name}.credentials]\n",
            environment.env_file
        );
        for (credential, variable) in &environment.credentials {
            let _ = writeln!(text, "{credential} = {variable:?}");
        }
    }
    text.push_str(
        "\n[audit]\npath = \".hogguard/audit.jsonl\"\n\
         # checkpoint_key = \"HOGGUARD_AUDIT_KEY\"              # HMAC key for the checkpoint\n\
         # posthog_project_api_key = \"POSTHOG_AUDIT_PROJECT_API_KEY\"   # ship entries to PostHog\n",
    );
    text
}

/// Default scopes and key age for an environment, by what its name says it is; anything
/// unknown gets production's, the strictest.
fn policy_for(environment: &str) -> (&'static str, &'static str) {
    let is = |word: &str| environment == word || environment.ends_with(&format!("-{word}"));
    if ["development", "local", "test", "development-local"]
        .iter()
        .any(|w| is(w))
    {
        ("[\"*:read\"]", "90d")
    } else if is("staging") || is("staging-local") {
        ("[\"*:read\", \"feature_flag:write\"]", "60d")
    } else {
        (
            "[\"feature_flag:read\"]   # only what production uses",
            "30d",
        )
    }
}

fn update_gitignore(
    root: &Path,
    repository: Option<&Repository>,
    env_files: &[String],
    printer: &Printer,
) -> Result<()> {
    let path = root.join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).context("cannot read .gitignore"),
    };
    let mut rules = repository.map(Repository::ignore_rules).transpose()?;
    let present: Vec<&str> = existing.lines().map(str::trim).collect();
    let mut wanted: Vec<String> = IGNORE_LINES.iter().map(|l| (*l).to_owned()).collect();
    wanted.extend(env_files.iter().cloned());
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
    let mut script = String::from(HOOK_SCRIPT);
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
