//! `hogguard init`: configuration from env files, .gitignore lines, the pre-commit hook.

use crate::support::TestEnv;
use hogguard_testkit::keys::Prefix;

#[test]
fn writes_a_config_naming_variables_and_ignores_env_files_once() {
    let repo = TestEnv::new();
    let personal = repo.key(Prefix::Personal);
    let public = repo.key(Prefix::Project);
    repo.write(".gitignore", "node_modules/\n");
    repo.write(
        ".env",
        format!("POSTHOG_PROJECT_API_KEY={public}\nOTHER=1\n"),
    );
    repo.write(
        ".env.production",
        format!(
            "export POSTHOG_PERSONAL_API_KEY=\"{personal}\"\nPOSTHOG_HOST=https://eu.posthog.com\n"
        ),
    );

    let init = repo.hogguard(["init"]).output();
    insta::assert_snapshot!(init.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    wrote hogguard.toml: 2 environments from 2 env files
      development: .env (1 credential)
      production: .env.production (1 credential)
    added to .gitignore: .env .env.local .env.*.local .hogguard/ .*.hogguard-lock .env.production
    ");
    let config = std::fs::read_to_string(repo.path().join("hogguard.toml")).unwrap();
    assert!(
        config.contains("[environments.production]\nenv_file = \".env.production\""),
        "{config}"
    );
    assert!(
        config.contains("personal_api_key = \"POSTHOG_PERSONAL_API_KEY\""),
        "{config}"
    );
    assert!(
        config.contains("[environments.development]\nenv_file = \".env\""),
        "{config}"
    );
    assert!(
        config.contains("project_api_key = \"POSTHOG_PROJECT_API_KEY\""),
        "{config}"
    );
    assert!(!config.contains("OTHER"));
    assert!(!config.contains(&personal) && !config.contains(&public));

    let gitignore = std::fs::read_to_string(repo.path().join(".gitignore")).unwrap();
    assert!(
        gitignore.starts_with("node_modules/\n"),
        "existing content kept: {gitignore}"
    );
    for line in [
        ".env",
        ".env.local",
        ".env.*.local",
        ".hogguard/",
        ".env.production",
    ] {
        assert!(
            gitignore.lines().any(|l| l == line),
            "{line} missing: {gitignore}"
        );
    }
    // The written configuration loads, and the env files now pass the ignore check.
    let report = repo
        .hogguard(["check", "--offline", "--format", "json"])
        .output()
        .json();
    let ignored = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "env-files-ignored")
        .unwrap();
    assert!(
        !ignored["details"].to_string().contains("not ignored"),
        "{ignored}"
    );

    // A second run changes nothing.
    let again = repo.hogguard(["init"]).output();
    insta::assert_snapshot!(again.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    hogguard.toml exists; left as it is (--force writes a new one)
    .gitignore already ignores the env files
    ");
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".gitignore")).unwrap(),
        gitignore
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("hogguard.toml")).unwrap(),
        config
    );
}

#[test]
fn the_pre_commit_hook_blocks_secrets_and_keeps_an_existing_hook() {
    let repo = TestEnv::new();
    repo.write("a.txt", "clean\n");
    repo.repo().commit_all("base", "2024-01-01T00:00:00+00:00");
    let hooks = repo.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let marker = repo.path().join("old-hook-ran");
    std::fs::write(
        hooks.join("pre-commit"),
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        hooks.join("pre-commit"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let init = repo.hogguard(["init", "--pre-commit"]).output();
    insta::assert_snapshot!(init.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    wrote hogguard.toml: 0 environments from 0 env files
    added to .gitignore: .env .env.local .env.*.local .hogguard/ .*.hogguard-lock
    kept the existing hook as pre-commit.before-hogguard; the new hook runs it after hogguard
    installed .git/hooks/pre-commit
    For the pre-commit framework, add to .pre-commit-config.yaml:
    repos:
      - repo: https://github.com/hogguard/hogguard
        rev: v0.1.0
        hooks:
          - id: hogguard
    ");
    assert!(hooks.join("pre-commit.before-hogguard").exists());

    let key = repo.key(Prefix::Personal);
    repo.write("a.txt", format!("{key}\n"));
    repo.repo().git(&["add", "a.txt"]);
    let blocked = commit_with_this_build(&repo, "leak");
    assert!(
        !blocked.status.success(),
        "the commit with a key must be refused"
    );
    // The finding's line, then what happened and what to do, for someone new to the hook.
    let stderr = String::from_utf8_lossy(&blocked.stderr);
    assert!(stderr.contains("a.txt:1:1: critical"), "{stderr}");
    assert!(stderr.contains("commit blocked"), "{stderr}");
    assert!(stderr.contains("env file git ignores"), "{stderr}");
    assert!(!stderr.contains(key.as_str()), "{stderr}");
    assert!(
        !marker.exists(),
        "the old hook runs only after hogguard passes"
    );

    repo.write("a.txt", "clean again\n");
    repo.repo().git(&["add", "a.txt"]);
    let allowed = commit_with_this_build(&repo, "fine");
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(marker.exists(), "the old hook still runs");

    // Installing again leaves the hook alone.
    let again = repo.hogguard(["init", "--pre-commit"]).output();
    insta::assert_snapshot!(again.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    hogguard.toml exists; left as it is (--force writes a new one)
    .gitignore already ignores the env files
    the pre-commit hook already runs hogguard
    For the pre-commit framework, add to .pre-commit-config.yaml:
    repos:
      - repo: https://github.com/hogguard/hogguard
        rev: v0.1.0
        hooks:
          - id: hogguard
    ");
}

#[test]
fn the_hook_goes_where_core_hooks_path_points_and_an_existing_one_keeps_running() {
    let repo = TestEnv::new();
    repo.write("a.txt", "clean\n");
    repo.repo().commit_all("base", "2024-01-01T00:00:00+00:00");
    // As husky sets it up: hooks in .husky/, one of them already there.
    repo.repo().git(&["config", "core.hooksPath", ".husky"]);
    let marker = repo.path().join("husky-hook-ran");
    let existing = repo.write(
        ".husky/pre-commit",
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    );
    std::fs::set_permissions(
        &existing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let init = repo.hogguard(["init", "--pre-commit"]).output();
    init.assert_code(0);
    assert!(
        init.stderr.contains("installed .husky/pre-commit"),
        "{}",
        init.stderr
    );
    assert!(!repo.path().join(".git/hooks/pre-commit").exists());

    repo.write("a.txt", format!("{}\n", repo.key(Prefix::Personal)));
    repo.repo().git(&["add", "a.txt"]);
    let blocked = commit_with_this_build(&repo, "leak");
    assert!(!blocked.status.success(), "git ran hogguard's hook");
    repo.write("a.txt", "clean again\n");
    repo.repo().git(&["add", "a.txt"]);
    let allowed = commit_with_this_build(&repo, "fine");
    assert!(allowed.status.success());
    assert!(marker.exists(), "husky's own hook still runs");
}

#[test]
fn init_keeps_the_mode_of_the_gitignore_it_rewrites() {
    let repo = TestEnv::new();
    let gitignore = repo.write(".gitignore", "node_modules/\n");
    std::fs::set_permissions(
        &gitignore,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    repo.hogguard(["init"]).output().assert_code(0);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&gitignore).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
    assert!(repo.read(".gitignore").contains(".env.local"));
}

#[test]
fn init_outside_a_repository_checks_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    let run = env
        .hogguard(["init", "--pre-commit"])
        .env("GIT_CEILING_DIRECTORIES", dir.path().parent().unwrap())
        .current_dir_absolute(dir.path())
        .output();
    run.assert_code(2);
    assert!(run.stderr.contains("git repository"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn settings_fill_posthog_and_only_keys_become_credentials() {
    let repo = TestEnv::new();
    let public = repo.key(Prefix::Project);
    let mine = repo.key(Prefix::Personal);
    let ci = repo.key(Prefix::Personal);
    let cli = repo.key(Prefix::Personal);
    repo.write(
        ".env",
        format!(
            "NEXT_PUBLIC_POSTHOG_KEY={public}\nNEXT_PUBLIC_POSTHOG_HOST=https://eu.i.posthog.com\n\
             POSTHOG_HOST=https://eu.i.posthog.com\nPOSTHOG_PROJECT_ID=12345\n"
        ),
    );
    repo.write(".env.local", format!("POSTHOG_PERSONAL_API_KEY={mine}\n"));
    repo.write(
        ".env.production",
        format!("POSTHOG_API_KEY={ci}\nPOSTHOG_CLI_TOKEN={cli}\n"),
    );
    repo.hogguard(["init"]).output().assert_code(0);
    insta::assert_snapshot!(repo.read("hogguard.toml"), @r#"
    # hogguard.toml: names the variables that hold PostHog credentials, never their values.
    # Docs: hogguard keys --help, hogguard check --help.

    [posthog]
    host = "https://eu.posthog.com"   # from .env
    project_id = 12345   # from .env; production keys should be scoped to it

    [environments.development]
    env_file = ".env"
    allowed_scopes = ["*:read"]
    max_key_age = "90d"
    [environments.development.credentials]
    project_api_key = "NEXT_PUBLIC_POSTHOG_KEY"

    [environments.local]
    env_file = ".env.local"
    allowed_scopes = ["*:read"]
    max_key_age = "90d"
    [environments.local.credentials]
    personal_api_key = "POSTHOG_PERSONAL_API_KEY"

    [environments.production]
    env_file = ".env.production"
    allowed_scopes = ["feature_flag:read"]   # only what production uses
    max_key_age = "30d"
    [environments.production.credentials]
    personal_api_key = "POSTHOG_API_KEY"
    cli_token = "POSTHOG_CLI_TOKEN"

    [audit]
    path = ".hogguard/audit.jsonl"
    # checkpoint_key = "HOGGUARD_AUDIT_KEY"              # HMAC key for the checkpoint
    # posthog_project_api_key = "POSTHOG_AUDIT_PROJECT_API_KEY"   # ship entries to PostHog
    "#);
    let per_environment = repo
        .hogguard(["check", "--offline", "--format", "json"])
        .output()
        .check_item("keys-per-environment");
    assert_eq!(per_environment["status"], "pass", "{per_environment}");
    // An EU capture host means an EU user: the rotation sends them to the EU dashboard.
    let plan = repo
        .hogguard([
            "rotate",
            "production",
            "personal_api_key",
            "--dry-run",
            "--stdin",
            "--yes",
        ])
        .output();
    plan.assert_code(0);
    assert!(
        plan.stdout
            .contains("https://eu.posthog.com/settings/user-api-keys"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_fresh_clone_is_set_up_from_templates_and_sub_projects() {
    let repo = TestEnv::new();
    repo.write(".gitignore", ".env*\n!.env.example\n!**/.env*.example\n");
    repo.write(
        ".env.example",
        "POSTHOG_PERSONAL_API_KEY=phx_your_key_here\nPOSTHOG_HOST=https://us.i.posthog.com\n",
    );
    repo.write(
        "apps/web/.env.production.example",
        "NEXT_PUBLIC_POSTHOG_KEY=<ph_project_token>\n",
    );
    repo.write("node_modules/some-lib/.env.example", "POSTHOG_API_KEY=\n");
    let init = repo.hogguard(["init"]).output();
    insta::assert_snapshot!(init.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    wrote hogguard.toml: 2 environments from 0 env files and 2 templates
      apps-web-production: apps/web/.env.production (1 credential)
      development: .env (1 credential)
    added to .gitignore: .hogguard/ .*.hogguard-lock
    ");
    insta::assert_snapshot!(repo.read("hogguard.toml"), @r#"
    # hogguard.toml: names the variables that hold PostHog credentials, never their values.
    # Docs: hogguard keys --help, hogguard check --help.

    [posthog]
    host = "https://us.posthog.com"   # from .env.example
    # project_id = 12345                  # production keys should be scoped to it

    [environments.apps-web-production]
    env_file = "apps/web/.env.production"
    allowed_scopes = ["feature_flag:read"]   # only what production uses
    max_key_age = "30d"
    [environments.apps-web-production.credentials]
    project_api_key = "NEXT_PUBLIC_POSTHOG_KEY"

    [environments.development]
    env_file = ".env"
    allowed_scopes = ["*:read"]
    max_key_age = "90d"
    [environments.development.credentials]
    personal_api_key = "POSTHOG_PERSONAL_API_KEY"

    [audit]
    path = ".hogguard/audit.jsonl"
    # checkpoint_key = "HOGGUARD_AUDIT_KEY"              # HMAC key for the checkpoint
    # posthog_project_api_key = "POSTHOG_AUDIT_PROJECT_API_KEY"   # ship entries to PostHog
    "#);
    assert_eq!(
        repo.read(".gitignore"),
        ".env*\n!.env.example\n!**/.env*.example\n\
         # PostHog credentials and hogguard's local state (added by hogguard init)\n.hogguard/\n\
         .*.hogguard-lock\n",
        "the existing glob already covers the env files"
    );
}

#[test]
fn the_hook_says_what_is_missing_when_hogguard_is_not_installed() {
    let repo = TestEnv::new();
    repo.write("a.txt", "clean\n");
    repo.repo().commit_all("base", "2024-01-01T00:00:00+00:00");
    repo.hogguard(["init", "--pre-commit"])
        .output()
        .assert_code(0);
    repo.write("a.txt", "changed\n");
    repo.repo().git(&["add", "a.txt"]);
    let commit = repo
        .repo()
        .command()
        .args(["commit", "-q", "-m", "change"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(commit.status.code(), Some(1), "fails closed");
    let stderr = String::from_utf8(commit.stderr).unwrap();
    assert!(
        stderr.contains("hogguard is not on PATH") && stderr.contains("cargo install"),
        "{stderr}"
    );
}

#[test]
fn the_pre_commit_framework_runs_the_hook_as_the_snippet_says() {
    let pre_commit = hogguard_testkit::tools::python_tool("pre-commit==4.7.0", "pre-commit");
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = TestEnv::new();
    repo.write("a.txt", "clean\n");
    repo.repo().commit_all("base", "2024-01-01T00:00:00+00:00");
    let cache = tempfile::tempdir().unwrap();
    let path = path_with_this_build();
    let try_repo = || {
        std::process::Command::new(&pre_commit)
            .current_dir(repo.path())
            .args(["try-repo"])
            .arg(&checkout)
            .arg("hogguard")
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", cache.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap()
    };
    repo.write("a.txt", format!("{}\n", repo.key(Prefix::Personal)));
    repo.repo().git(&["add", "a.txt"]);
    let refused = try_repo();
    let text = String::from_utf8_lossy(&refused.stdout).into_owned();
    repo.assert_no_leak("pre-commit's output", &text);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("hogguard (PostHog secrets)") && text.contains("Failed"),
        "{text}"
    );

    repo.write("a.txt", "clean again\n");
    repo.repo().git(&["add", "a.txt"]);
    let passed = try_repo();
    let text = String::from_utf8_lossy(&passed.stdout).into_owned();
    assert!(
        passed.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(text.contains("Passed"), "{text}");
}

/// `PATH` with the directory of this test build's `hogguard` first: hooks run the hogguard
/// they find there.
fn path_with_this_build() -> String {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_hogguard"))
        .parent()
        .unwrap();
    format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap())
}

/// `git commit -q -m message` of what is staged, its hooks running this build.
fn commit_with_this_build(repo: &TestEnv, message: &str) -> std::process::Output {
    repo.repo()
        .command()
        .args(["commit", "-q", "-m", message])
        .env("PATH", path_with_this_build())
        .output()
        .unwrap()
}
