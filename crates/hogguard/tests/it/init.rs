//! `hogguard init`: configuration from env files, .gitignore lines, the pre-commit hook.

use crate::support::{self, Run, run};
use hogguard_testkit::git::TempRepo;
use hogguard_testkit::keys::{self, Prefix};

fn hogguard(repo: &TempRepo, args: &[&str]) -> (i32, String, String) {
    let Run {
        code,
        stdout,
        stderr,
    } = run(support::hogguard(repo.path()).args(args), b"");
    (code, stdout, stderr)
}

#[test]
fn writes_a_config_naming_variables_and_ignores_env_files_once() {
    let repo = TempRepo::new();
    let personal = keys::current(Prefix::Personal);
    let public = keys::current(Prefix::Project);
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

    let (code, _, stderr) = hogguard(&repo, &["init"]);
    assert_eq!(code, 0, "{stderr}");
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
    let (_, report, stderr) = hogguard(&repo, &["check", "--offline", "--format", "json"]);
    let report: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {stderr}"));
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
    let (code, _, stderr) = hogguard(&repo, &["init"]);
    assert_eq!(code, 0);
    assert!(
        stderr.contains("hogguard.toml exists; left as it is"),
        "{stderr}"
    );
    assert!(
        stderr.contains(".gitignore already ignores the env files"),
        "{stderr}"
    );
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
    let repo = TempRepo::new();
    repo.write("a.txt", "clean\n");
    repo.commit_all("base", "2024-01-01T00:00:00+00:00");
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

    let (code, _, stderr) = hogguard(&repo, &["init", "--pre-commit"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("kept the existing hook as pre-commit.before-hogguard"),
        "{stderr}"
    );
    assert!(stderr.contains("- id: hogguard"), "{stderr}");
    assert!(hooks.join("pre-commit.before-hogguard").exists());

    // The hook runs the hogguard on PATH: put this build first.
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_hogguard"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let key = keys::current(Prefix::Personal);
    repo.write("a.txt", format!("{key}\n"));
    repo.git(&["add", "a.txt"]);
    let blocked = repo
        .command()
        .args(["commit", "-q", "-m", "leak"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        !blocked.status.success(),
        "the commit with a key must be refused"
    );
    assert!(
        !marker.exists(),
        "the old hook runs only after hogguard passes"
    );

    repo.write("a.txt", "clean again\n");
    repo.git(&["add", "a.txt"]);
    let allowed = repo
        .command()
        .args(["commit", "-q", "-m", "fine"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(marker.exists(), "the old hook still runs");

    // Installing again leaves the hook alone.
    let (_, _, stderr) = hogguard(&repo, &["init", "--pre-commit"]);
    assert!(stderr.contains("already runs hogguard"), "{stderr}");
}
