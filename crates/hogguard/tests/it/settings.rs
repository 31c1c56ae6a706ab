//! Where hogguard finds its configuration and its variables, and which commands need them.

use hogguard_testkit::keys::Prefix;

use crate::support::TestEnv;

#[test]
fn init_and_the_offline_webhook_tools_work_beside_a_broken_configuration() {
    let env = TestEnv::new();
    env.write("hogguard.toml", "[posthog\nhost = ");
    env.write(".env", "POSTHOG_PERSONAL_API_KEY=\n");
    let init = env.hogguard(["init", "--force"]).output();
    init.assert_code(0);
    assert!(
        env.read("hogguard.toml")
            .contains("[environments.development]")
    );
    let secret = env.hogguard(["webhook", "secret"]).output();
    secret.assert_code(0);
    assert!(secret.stdout.starts_with("whsec_"), "{}", secret.stdout);
    // `webhook secret` prints a new secret on purpose: it is the command's output.
    env.seed(secret.stdout.trim());
}

#[test]
fn the_configuration_at_the_repository_root_is_found_from_a_subdirectory() {
    let env = TestEnv::new();
    env.write(
        "hogguard.toml",
        "[audit]\npath = '.hogguard/audit.jsonl'\n\
         [environments.production]\nenv_file = '.env.production'\n\
         [environments.production.credentials]\npersonal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n\
         [[scan.rules]]\nid = 'internal-token'\nregex = 'itk_[a-z0-9]{32}'\nkeywords = ['itk_']\n",
    );
    env.write(
        "app/src/token.txt",
        "itk_0a1b2c3d4e5f60718293a4b5c6d7e8f9\n",
    );
    let scan = env.hogguard(["scan", "."]).current_dir("app/src").output();
    scan.assert_code(1);
    assert!(
        scan.stdout.contains("internal-token"),
        "{}",
        scan.snapshot()
    );
    // The env file named in the configuration is read relative to the configuration.
    let keys = env.hogguard(["keys"]).current_dir("app/src").output();
    keys.assert_code(1);
    assert!(
        keys.stdout.contains("no value in ../../.env.production"),
        "{}",
        keys.snapshot()
    );
    let audit = env
        .hogguard(["check", "--offline", "--format", "json"])
        .current_dir("app/src")
        .output()
        .check_item("audit-log");
    assert_ne!(audit["reason"], "no audit log is configured", "{audit}");
}

#[test]
fn hogguard_config_and_the_flag_choose_the_file() {
    let env = TestEnv::new();
    env.write("hogguard.toml", "[scan]\n");
    env.write("elsewhere/chosen.toml", "[audit]\npath = 'chosen.jsonl'\n");
    env.write("flagged.toml", "[scann]\n");
    let logged = |run: &crate::support::Output<'_>| run.assert_code(0).stderr.clone();
    let by_variable = env
        .audit_log("a")
        .env("HOGGUARD_CONFIG", "elsewhere/chosen.toml")
        .output();
    logged(&by_variable);
    assert!(env.path().join("elsewhere/chosen.jsonl").is_file());
    let by_flag = env
        .hogguard(["--config", "flagged.toml", "audit", "verify"])
        .env("HOGGUARD_CONFIG", "elsewhere/chosen.toml")
        .output();
    by_flag.assert_code(2);
    assert!(
        by_flag.stderr.contains("flagged.toml"),
        "{}",
        by_flag.stderr
    );
}

#[test]
fn the_project_key_to_ship_with_is_read_from_the_env_files() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let project_key = env.key(Prefix::Project);
    env.write(
        "hogguard.toml",
        "[audit]\nposthog_project_api_key = 'AUDIT_PROJECT_KEY'\n\
         [environments.production]\nenv_file = '.env.production'\n",
    );
    env.audit_log("a").output().assert_code(0);
    let missing = env.hogguard(["audit", "ship"]).output();
    missing.assert_code(2);
    insta::assert_snapshot!(missing.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: AUDIT_PROJECT_KEY is not set ([audit] posthog_project_api_key names it): looked in the process environment and .env.production
    ");
    env.write(
        ".env.production",
        format!("AUDIT_PROJECT_KEY={project_key}\n"),
    );
    env.hogguard(["audit", "ship"]).output().assert_code(0);
    assert_eq!(hog.events().len(), 1);
}

#[test]
fn audit_entries_name_the_account_when_user_is_unset() {
    let env = TestEnv::new();
    env.write("hogguard.toml", "[audit]\n");
    env.audit_log("a")
        .env_remove("HOGGUARD_USER")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .assert_code(0);
    let shown = env.hogguard(["audit", "show", "--format", "json"]).output();
    let entry = shown.json();
    let whoami = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let account = String::from_utf8(whoami.stdout).unwrap();
    assert_eq!(entry["user_id"], account.trim(), "{entry}");
}
