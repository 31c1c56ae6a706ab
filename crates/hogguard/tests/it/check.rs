//! `hogguard check` on fixture repositories, one per failure mode, plus a snapshot of the whole
//! JSON report of a mixed repository.

use std::os::unix::fs::PermissionsExt;

use crate::support::{TestEnv, check_item};
use hogguard_testkit::keys::{self, Era, Prefix};
use hogguard_testkit::posthog::{
    MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, Timestamp, UserSpec,
};
use serde_json::{Value, json};

/// `hogguard check --format json ARGS`: exit code, report, standard error.
fn check(env: &TestEnv, args: &[&str]) -> (i32, Value, String) {
    let run = env
        .hogguard(["check", "--format", "json"])
        .args(args)
        .output();
    let report = run.json();
    (run.code, report, run.stderr)
}

fn private(repo: &TestEnv, relative: &str, contents: &str) {
    let path = repo.write(relative, contents);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A token made at test time from fixed bytes, so the snapshot is stable; watched for leaks.
fn fixed_token(env: &TestEnv, prefix: Prefix, seed: u8) -> String {
    let bytes: Vec<u8> = (0..prefix.current_bytes())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
        .collect();
    let token = format!(
        "{}{}",
        prefix.as_str(),
        keys::body_from_bytes(Era::Current, &bytes)
    );
    env.seed(&token);
    token
}

/// A new webhook secret, watched for leaks.
fn webhook_secret(env: &TestEnv) -> String {
    let secret = keys::webhook_secret();
    env.seed(&secret);
    secret
}

#[test]
fn a_mixed_repository_gives_this_whole_report() {
    let repo = TestEnv::new();
    let leaked = fixed_token(&repo, Prefix::Personal, 1);
    let shared = fixed_token(&repo, Prefix::Secret, 2);
    repo.write(".gitignore", ".env\n");
    repo.write("src/app.py", format!("import os\nKEY = '{leaked}'\n"));
    repo.write(
        ".env.production",
        format!("POSTHOG_SECRET_API_KEY={shared}\nPOSTHOG_WEBHOOK_SECRET=changeme\n"),
    );
    repo.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n[environments.production.credentials]\n\
         secret_api_key = 'POSTHOG_SECRET_API_KEY'\nwebhook_secret = 'POSTHOG_WEBHOOK_SECRET'\n\
         [environments.staging]\nenv_file = '.env.staging'\n[environments.staging.credentials]\n\
         secret_api_key = 'POSTHOG_SECRET_API_KEY'\n",
    );
    repo.repo().commit_all("mixed", "2024-01-01T00:00:00+00:00");
    private(
        &repo,
        ".env.staging",
        &format!("POSTHOG_SECRET_API_KEY={shared}\n"),
    );
    std::fs::set_permissions(
        repo.path().join(".env.production"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let (code, report, stderr) = check(&repo, &["--offline"]);
    assert_eq!(code, 1, "{stderr}");
    let (l, s) = (
        hogguard_secret::mask(&leaked),
        hogguard_secret::mask(&shared),
    );
    let expected = json!({
        "version": 1,
        "items": [
            {
                "id": "secrets-in-env", "status": "fail",
                "reason": "2 PostHog secrets in tracked files",
                "fix": "move each value into the environment (a git-ignored .env file or your secret manager), rotate it (`hogguard rotate` or `hogguard scan --revoke`), and rewrite history if it was pushed",
                "details": [
                    format!(".env.production:1:24 posthog-project-secret-api-key {s}"),
                    format!("src/app.py:2:8 posthog-personal-api-key {l}"),
                ]
            },
            {
                "id": "env-files-ignored", "status": "fail",
                "reason": "2 of 2 environment files are not protected; 3 usual names would not be ignored",
                "fix": "git rm --cached .env.production; add `.env.production` to .gitignore; chmod 600 .env.production; add `.env.staging` to .gitignore; add `.env.development.local` to .gitignore; add `.env.local` to .gitignore; add `.env.production.local` to .gitignore (`hogguard init` adds the usual ignore lines)",
                "details": [
                    ".env.production is tracked by git: ignore rules do not protect tracked files",
                    ".env.production is not ignored by git",
                    ".env.production is readable by other users",
                    ".env.staging is not ignored by git",
                    ".env.development.local would not be ignored by git if it were created",
                    ".env.local would not be ignored by git if it were created",
                    ".env.production.local would not be ignored by git if it were created"
                ]
            },
            {
                "id": "keys-per-environment", "status": "fail",
                "reason": "the same value is used in more than one environment",
                "fix": "create a separate key for each environment",
                "details": [format!("production.secret_api_key ({s}) = staging.secret_api_key ({s})")]
            },
            {
                "id": "least-privilege", "status": "skip",
                "reason": "offline: scopes are known only to PostHog", "fix": "run without --offline", "details": []
            },
            {
                "id": "key-age", "status": "skip",
                "reason": "offline: key ages are known only to PostHog", "fix": "run without --offline", "details": []
            },
            {
                "id": "webhook-signatures", "status": "fail",
                "reason": "2 problems with the webhook secrets",
                "fix": "make one with `hogguard webhook secret` per environment and verify deliveries with it",
                "details": [
                    "production: POSTHOG_WEBHOOK_SECRET is weaker than 24 random bytes",
                    "staging: no webhook secret configured"
                ]
            },
            {
                "id": "audit-log", "status": "fail",
                "reason": "no audit log is configured",
                "fix": "add an [audit] section with a path to hogguard.toml", "details": []
            }
        ]
    });
    assert_eq!(
        report,
        expected,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    let human = repo.hogguard(["check", "--offline"]).output();
    insta::assert_snapshot!(human.snapshot(), @"
    exit code: 1
    ----- stdout -----
    FAIL  secrets-in-env         2 PostHog secrets in tracked files
          .env.production:1:24 posthog-project-secret-api-key phs_...[MASK]
          src/app.py:2:8 posthog-personal-api-key phx_...[MASK]
          fix: move each value into the environment (a git-ignored .env file or your secret manager), rotate it (`hogguard rotate` or `hogguard scan --revoke`), and rewrite history if it was pushed
    FAIL  env-files-ignored      2 of 2 environment files are not protected; 3 usual names would not be ignored
          .env.production is tracked by git: ignore rules do not protect tracked files
          .env.production is not ignored by git
          .env.production is readable by other users
          .env.staging is not ignored by git
          .env.development.local would not be ignored by git if it were created
          .env.local would not be ignored by git if it were created
          .env.production.local would not be ignored by git if it were created
          fix: git rm --cached .env.production; add `.env.production` to .gitignore; chmod 600 .env.production; add `.env.staging` to .gitignore; add `.env.development.local` to .gitignore; add `.env.local` to .gitignore; add `.env.production.local` to .gitignore (`hogguard init` adds the usual ignore lines)
    FAIL  keys-per-environment   the same value is used in more than one environment
          production.secret_api_key (phs_...[MASK]) = staging.secret_api_key (phs_...[MASK])
          fix: create a separate key for each environment
    SKIP  least-privilege        offline: scopes are known only to PostHog
          fix: run without --offline
    SKIP  key-age                offline: key ages are known only to PostHog
          fix: run without --offline
    FAIL  webhook-signatures     2 problems with the webhook secrets
          production: POSTHOG_WEBHOOK_SECRET is weaker than 24 random bytes
          staging: no webhook secret configured
          fix: make one with `hogguard webhook secret` per environment and verify deliveries with it
    FAIL  audit-log              no audit log is configured
          fix: add an [audit] section with a path to hogguard.toml
    5 of 7 checks failed
    ----- stderr -----
    ");
}

/// A repository that passes every offline item.
fn clean_repo() -> TestEnv {
    let repo = TestEnv::new();
    repo.write(".gitignore", ".env\n.env.*\n!.env.example\n");
    repo.write(".env.example", "POSTHOG_PERSONAL_API_KEY=\n");
    repo.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n[environments.production.credentials]\n\
         webhook_secret = 'POSTHOG_WEBHOOK_SECRET'\n\
         [environments.development]\nenv_file = '.env.development'\n[environments.development.credentials]\n\
         webhook_secret = 'POSTHOG_WEBHOOK_SECRET'\n[audit]\npath = 'audit.jsonl'\n",
    );
    repo.repo().commit_all("clean", "2024-01-01T00:00:00+00:00");
    repo.audit_log("setup").output().assert_code(0);
    let production = webhook_secret(&repo);
    private(
        &repo,
        ".env.production",
        &format!("POSTHOG_WEBHOOK_SECRET={production}\n"),
    );
    let development = webhook_secret(&repo);
    private(
        &repo,
        ".env.development",
        &format!("POSTHOG_WEBHOOK_SECRET={development}\n"),
    );
    repo
}

#[test]
fn a_clean_repository_passes_offline() {
    let repo = clean_repo();
    let (code, report, stderr) = check(&repo, &["--offline"]);
    let statuses: Vec<(&str, &str)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("secrets-in-env", "pass"),
            ("env-files-ignored", "pass"),
            ("keys-per-environment", "pass"),
            ("least-privilege", "skip"),
            ("key-age", "skip"),
            ("webhook-signatures", "pass"),
            ("audit-log", "pass"),
        ],
        "{stderr}"
    );
    assert_eq!(code, 0);
}

#[test]
fn env_file_verdicts_agree_with_git_check_ignore() {
    let repo = clean_repo();
    // Nested rules, a negation and info/exclude.
    repo.write(".gitignore", ".env\n.env.*\n!.env.local\n!.env.example\n");
    repo.write(".git/info/exclude", ".env.production.local\n");
    repo.write(".env.staging", "X=1\n");
    let (_, report, _) = check(&repo, &["--offline"]);
    let details: Vec<String> = check_item(&report, "env-files-ignored")["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    for file in [
        ".env",
        ".env.local",
        ".env.production.local",
        ".env.development.local",
        ".env.production",
        ".env.staging",
    ] {
        let ignored_by_git = repo
            .repo()
            .command()
            .args(["check-ignore", "-q", "--no-index", file])
            .status()
            .unwrap()
            .success();
        let reported = details.contains(&format!("{file} is not ignored by git"))
            || details.contains(&format!(
                "{file} would not be ignored by git if it were created"
            ));
        assert_eq!(reported, !ignored_by_git, "{file}: {details:?}");
    }
}

#[test]
fn history_is_searched_with_deep() {
    let repo = clean_repo();
    let key = repo.key(Prefix::Personal);
    repo.write("old.py", format!("K = '{key}'\n"));
    repo.repo().commit_all("oops", "2024-02-01T00:00:00+00:00");
    std::fs::remove_file(repo.path().join("old.py")).unwrap();
    repo.repo().commit_all("fix", "2024-02-02T00:00:00+00:00");
    let (_, shallow, _) = check(&repo, &["--offline"]);
    assert_eq!(check_item(&shallow, "secrets-in-env")["status"], "pass");
    let (code, deep, _) = check(&repo, &["--offline", "--deep"]);
    assert_eq!(code, 1);
    let found = check_item(&deep, "secrets-in-env");
    assert_eq!(found["status"], "fail");
    assert!(
        found["details"][0]
            .as_str()
            .unwrap()
            .starts_with("old.py:1:6 posthog-personal-api-key"),
        "{found}"
    );
}

#[test]
fn webhook_secrets_must_be_strong_and_unshared() {
    let repo = clean_repo();
    let shared = webhook_secret(&repo);
    private(
        &repo,
        ".env.production",
        &format!("POSTHOG_WEBHOOK_SECRET={shared}\n"),
    );
    private(
        &repo,
        ".env.development",
        &format!("POSTHOG_WEBHOOK_SECRET={shared}\n"),
    );
    let (_, report, _) = check(&repo, &["--offline"]);
    let webhook = check_item(&report, "webhook-signatures");
    assert_eq!(webhook["status"], "fail");
    assert_eq!(
        webhook["details"],
        json!(["production: POSTHOG_WEBHOOK_SECRET is the same secret as in development"])
    );
    assert_eq!(
        check_item(&report, "keys-per-environment")["status"],
        "fail"
    );
}

#[test]
fn least_privilege_and_key_age_ask_posthog() {
    let repo = clean_repo();
    let hog = repo.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let old = Timestamp::from_unix_seconds(hog.now().unix_seconds() - 200 * 86_400);
    let broad = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("prod").scopes(["*"]).created_at(old),
    );
    repo.seed(&broad.value);
    repo.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\nmax_key_age = '90d'\n\
         allowed_scopes = ['feature_flag:read']\n[environments.production.credentials]\n\
         personal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n",
    );
    private(
        &repo,
        ".env.production",
        &format!("POSTHOG_PERSONAL_API_KEY={}\n", broad.value),
    );
    let (code, report, stderr) = check(&repo, &[]);
    assert_eq!(code, 1, "{stderr}");
    let scopes = check_item(&report, "least-privilege");
    assert_eq!(scopes["status"], "fail");
    assert_eq!(scopes["details"].as_array().unwrap().len(), 3, "{scopes}");
    let age = check_item(&report, "key-age");
    assert_eq!(age["status"], "fail");
    assert!(
        age["details"][0].as_str().unwrap().contains("200 days ago"),
        "{age}"
    );
    assert!(!report.to_string().contains(&broad.value));
}

#[test]
fn markdown_is_a_table_for_pull_requests() {
    let repo = clean_repo();
    let text = repo
        .hogguard(["check", "--offline", "--format", "markdown"])
        .output()
        .stdout;
    assert!(
        text.starts_with("| | Check | Result | Fix |\n|---|---|---|---|\n"),
        "{text}"
    );
    assert!(text.contains("| ⏭️ | `least-privilege` | offline: scopes are known only to PostHog | run without --offline |"));
}

#[test]
fn a_tampered_audit_log_fails_the_check() {
    let repo = clean_repo();
    let log = repo.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"setup\"", "\"setuq\"", 1)).unwrap();
    let (code, report, _) = check(&repo, &["--offline"]);
    assert_eq!(code, 1);
    let audit = check_item(&report, "audit-log");
    assert_eq!(audit["status"], "fail");
    assert!(
        audit["reason"].as_str().unwrap().contains("seq 1"),
        "{audit}"
    );
}

/// A project with a project secret API key made `days` ago, and an admin key that may list
/// the project's keys, both in `.env.production`.
fn project_with_an_old_secret_key(env: &TestEnv, days: i64) -> u64 {
    let hog = env.posthog();
    let organization = hog.add_organization("Acme");
    let project = hog.add_project(&organization, "web");
    let admin = hog.add_user(
        UserSpec::new("admin@acme.test").member_of(&organization, MembershipLevel::Admin),
    );
    let admin_key = hog.add_personal_key(admin.id, PersonalKeySpec::new("admin").scopes(["*"]));
    let made = Timestamp::from_unix_seconds(hog.now().unix_seconds() - days * 86_400);
    let secret_key = hog.add_project_secret_key(
        project.id,
        ProjectSecretKeySpec::new("backend", ["feature_flag:read"]).created_at(made),
    );
    env.seed(&admin_key.value);
    env.seed(&secret_key.value);
    private(
        env,
        ".env.production",
        &format!(
            "POSTHOG_SECRET_API_KEY={}\nPOSTHOG_ADMIN_API_KEY={}\n",
            secret_key.value, admin_key.value
        ),
    );
    project.id
}

fn key_age_item(env: &TestEnv) -> Value {
    let run = env.hogguard(["check", "--format", "json"]).output();
    check_item(&run.json(), "key-age").clone()
}

#[test]
fn the_age_of_a_project_secret_key_is_learnt_from_the_projects_key_list() {
    let env = TestEnv::new();
    let project = project_with_an_old_secret_key(&env, 702);
    env.write(
        "hogguard.toml",
        format!(
            "[posthog]\nproject_id = {project}\nadmin_key = 'POSTHOG_ADMIN_API_KEY'\n\
             [environments.production]\nenv_file = '.env.production'\nmax_key_age = '90d'\n\
             [environments.production.credentials]\nsecret_api_key = 'POSTHOG_SECRET_API_KEY'\n"
        ),
    );
    let age = key_age_item(&env);
    assert_eq!(age["status"], "fail", "{age}");
    assert_eq!(
        age["details"],
        json!([
            "production.secret_api_key: made or rolled 702 days ago, beyond max_key_age 90d: rotate it"
        ])
    );
}

#[test]
fn a_key_whose_age_is_unknown_is_a_warning_never_young() {
    let env = TestEnv::new();
    let project = project_with_an_old_secret_key(&env, 702);
    // No admin key: the project's key list cannot be read.
    env.write(
        "hogguard.toml",
        format!(
            "[posthog]\nproject_id = {project}\n\
             [environments.production]\nenv_file = '.env.production'\nmax_key_age = '90d'\n\
             [environments.production.credentials]\nsecret_api_key = 'POSTHOG_SECRET_API_KEY'\n"
        ),
    );
    let age = key_age_item(&env);
    assert_eq!(age["status"], "warn", "{age}");
    assert_eq!(age["reason"], "1 key's age is not known", "{age}");
    assert!(
        age["details"][0]
            .as_str()
            .unwrap()
            .starts_with("production.secret_api_key: set [posthog] admin_key"),
        "{age}"
    );
}

#[test]
fn env_files_in_sub_projects_are_checked_and_only_files_that_exist_are_counted() {
    let repo = clean_repo();
    let key = repo.key(Prefix::Personal);
    // A sub-project's env file, world-readable and not ignored; one inside an ignored
    // dependency folder is not the project's.
    let nested = repo.write(
        "node-rollup/.env",
        format!("POSTHOG_PERSONAL_API_KEY={key}\n"),
    );
    std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Anchored rules: they protect the root's env files only.
    repo.write(
        ".gitignore",
        "/.env\n/.env.*\n!.env.example\nnode_modules/\n",
    );
    repo.write("node_modules/pkg/.env", "X=1\n");
    let (_, report, _) = check(&repo, &["--offline"]);
    let ignored = check_item(&report, "env-files-ignored");
    assert_eq!(ignored["status"], "fail", "{ignored}");
    assert_eq!(
        ignored["reason"], "1 of 3 environment files is not protected",
        "{ignored}"
    );
    assert_eq!(
        ignored["details"],
        json!([
            "node-rollup/.env is not ignored by git",
            "node-rollup/.env is readable by other users"
        ])
    );
    std::fs::remove_file(&nested).unwrap();
    let (_, report, _) = check(&repo, &["--offline"]);
    assert_eq!(
        check_item(&report, "env-files-ignored")["reason"],
        "2 of 2 environment files are ignored, untracked and private"
    );
}

#[test]
fn quiet_shows_only_what_fails_or_warns_and_unreachable_posthog_shows_why() {
    let repo = clean_repo();
    let hog = repo.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let broad = hog.add_personal_key(user.id, PersonalKeySpec::new("prod").scopes(["*"]));
    repo.seed(&broad.value);
    repo.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\nmax_key_age = '90d'\n\
         allowed_scopes = ['feature_flag:read']\n[environments.production.credentials]\n\
         personal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n[audit]\npath = 'audit.jsonl'\n",
    );
    private(
        &repo,
        ".env.production",
        &format!("POSTHOG_PERSONAL_API_KEY={}\n", broad.value),
    );
    let quiet = repo.hogguard(["check", "-q", "--color", "never"]).output();
    insta::assert_snapshot!(quiet.snapshot(), @"
    exit code: 1
    ----- stdout -----
    WARN  keys-per-environment   fewer than two environments are configured, so none can be compared
          fix: declare [environments.development], [environments.staging] and [environments.production] in hogguard.toml
    FAIL  least-privilege        1 key breaks the policy (3 verdicts)
          production.personal_api_key: holds * beyond allowed_scopes [feature_flag:read]
          production.personal_api_key: holds `*` (full access) outside development
          production.personal_api_key: is not scoped to projects: it reaches every project of its owner
          fix: create keys with only the scopes in allowed_scopes, scoped to the project, and rotate to them
    ----- stderr -----
    ");
    hog.inject(hogguard_testkit::posthog::Fault::status(503).times(100));
    let unreachable = repo.hogguard(["check", "-q", "--color", "never"]).output();
    insta::assert_snapshot!(unreachable.snapshot(), @"
    exit code: 0
    ----- stdout -----
    WARN  keys-per-environment   fewer than two environments are configured, so none can be compared
          fix: declare [environments.development], [environments.staging] and [environments.production] in hogguard.toml
    WARN  least-privilege        PostHog could not tell about 1 key
          production.personal_api_key: PostHog could not be asked: self-hosted: PostHog server error (HTTP 503): Service Unavailable
          fix: see each key's reason; run again when PostHog answers
    WARN  key-age                1 key's age is not known
          production.personal_api_key: PostHog could not be asked: self-hosted: PostHog server error (HTTP 503): Service Unavailable
          fix: see each key's reason; run again when PostHog answers
    ----- stderr -----
    ");
}

#[test]
fn an_app_that_receives_no_webhooks_skips_the_webhook_item() {
    let repo = clean_repo();
    repo.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n\
         [environments.production.credentials]\nproject_api_key = 'POSTHOG_PROJECT_API_KEY'\n",
    );
    let (_, report, _) = check(&repo, &["--offline"]);
    let webhook = check_item(&report, "webhook-signatures");
    assert_eq!(webhook["status"], "skip", "{webhook}");
    assert_eq!(
        webhook["reason"],
        "no environment names a webhook secret: the project receives no webhooks"
    );
}
