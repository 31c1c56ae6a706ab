//! `hogguard keys` against the PostHog stand-in: statuses, scopes, ages and policy verdicts.

use crate::support::{Output, TestEnv};
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{PersonalKeySpec, Timestamp, UserSpec};

const CONFIG: &str = r#"
[environments.production]
env_file = ".env.production"
allowed_scopes = ["feature_flag:read", "insight:read"]
max_key_age = "30d"
[environments.production.credentials]
personal_api_key = "POSTHOG_PERSONAL_API_KEY"
project_api_key = "POSTHOG_PROJECT_API_KEY"
webhook_secret = "POSTHOG_WEBHOOK_SECRET"

[environments.staging]
env_file = ".env.staging"
[environments.staging.credentials]
personal_api_key = "POSTHOG_PERSONAL_API_KEY"

[environments.development]
allowed_scopes = ["*"]
[environments.development.credentials]
personal_api_key = "DEV_POSTHOG_KEY"
old_key = "DEV_OLD_KEY"
"#;

/// `hogguard keys ARGS` against the environment's PostHog stand-in, with `vars` set.
fn keys<'e>(env: &'e TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output<'e> {
    env.posthog();
    let mut command = env.hogguard(["keys"]).args(args);
    for (name, value) in vars {
        command = command.env(name, value);
    }
    command.output()
}

#[test]
fn inventory_shows_status_scopes_age_and_verdicts() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let hundred_days_ago = Timestamp::from_unix_seconds(hog.now().unix_seconds() - 100 * 86_400);
    let production = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("prod")
            .scopes(["feature_flag:read", "insight:write"])
            .created_at(hundred_days_ago),
    );
    let development = hog.add_personal_key(user.id, PersonalKeySpec::new("dev").scopes(["*"]));
    env.seed(&production.value);
    env.seed(&development.value);
    let dead = env.key(Prefix::Personal);
    let public = env.key(Prefix::Project);
    let webhook = keys::webhook_secret();
    env.seed(&webhook);
    env.write("hogguard.toml", CONFIG);
    env.write(
        ".env.production",
        format!(
            "# production\nexport POSTHOG_PERSONAL_API_KEY=\"{}\"\nPOSTHOG_PROJECT_API_KEY={public}\nPOSTHOG_WEBHOOK_SECRET='{webhook}'\n",
            production.value
        ),
    );
    env.write(
        ".env.staging",
        format!("POSTHOG_PERSONAL_API_KEY={}\n", production.value),
    );

    let vars = [
        ("DEV_POSTHOG_KEY", development.value.as_str()),
        ("DEV_OLD_KEY", dead.as_str()),
    ];
    let run = keys(&env, &["--format", "json"], &vars);
    run.assert_code(1);
    let report = run.json();
    let credential = |env: &str, name: &str| {
        report["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["environment"] == env && c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{env}.{name} missing"))
    };
    let verdicts = |c: &serde_json::Value| {
        c["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let prod = credential("production", "personal_api_key");
    assert_eq!(prod["status"], "live");
    assert_eq!(prod["kind"], "personal_api_key");
    assert_eq!(prod["masked"], hogguard_secret::mask(&production.value));
    assert_eq!(
        prod["scopes"],
        serde_json::json!(["feature_flag:read", "insight:write"])
    );
    assert_eq!(prod["age_days"], 100);
    assert_eq!(
        verdicts(&prod),
        [
            "scope-not-allowed",
            "not-project-scoped",
            "too-old",
            "shared-between-environments"
        ]
    );
    assert!(
        prod["verdicts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("insight:write")
    );

    assert_eq!(
        verdicts(&credential("staging", "personal_api_key")),
        ["shared-between-environments"]
    );
    let dev = credential("development", "personal_api_key");
    assert_eq!(
        (dev["status"].as_str(), verdicts(&dev).len()),
        (Some("live"), 0),
        "`*` is allowed in development"
    );
    let old = credential("development", "old_key");
    assert_eq!(
        (old["status"].as_str(), verdicts(&old)),
        (Some("invalid"), vec!["invalid-key".to_owned()])
    );
    let public_key = credential("production", "project_api_key");
    assert_eq!(public_key["status"], "public");
    assert_eq!(
        credential("production", "webhook_secret")["kind"],
        "webhook_secret"
    );
    // Each distinct probed secret was asked once: production (shared with staging), dev, old.
    assert_eq!(hog.request_count("/api/personal_api_keys/@current/"), 3);

    let human = keys(&env, &["--env", "production"], &vars);
    insta::assert_snapshot!(human.snapshot(), @"
    exit code: 1
    ----- stdout -----
    production
      personal_api_key (POSTHOG_PERSONAL_API_KEY): personal_api_key phx_...[MASK] live
          scopes feature_flag:read insight:write; projects all
          created [TIME], last used [TIME], last rolled never (100 days old)
          ✗ scope-not-allowed: holds insight:write beyond allowed_scopes [feature_flag:read insight:read]
          ✗ not-project-scoped: is not scoped to projects: it reaches every project of its owner
          ✗ too-old: made or rolled 100 days ago, beyond max_key_age 30d: rotate it
      project_api_key (POSTHOG_PROJECT_API_KEY): project_api_key phc_...[MASK] public
      webhook_secret (POSTHOG_WEBHOOK_SECRET): webhook_secret whse...[MASK] unverifiable
    ----- stderr -----
    ");
}

#[test]
fn one_environment_and_missing_values() {
    let env = TestEnv::new();
    env.write("hogguard.toml", CONFIG);
    let development = keys(&env, &["--env", "development", "--color", "never"], &[]);
    insta::assert_snapshot!(development.snapshot(), @"
    exit code: 1
    ----- stdout -----
    development
      old_key (DEV_OLD_KEY): unknown kind - missing
          ✗ missing-value: DEV_OLD_KEY has no value in process environment
      personal_api_key (DEV_POSTHOG_KEY): unknown kind - missing
          ✗ missing-value: DEV_POSTHOG_KEY has no value in process environment
    ----- stderr -----
    ");
    let unknown = keys(&env, &["--env", "qa"], &[]);
    insta::assert_snapshot!(unknown.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: no environment `qa` in the configuration (known: development, production, staging)
    ");
}

#[test]
fn every_probe_leaves_an_audit_entry_that_says_whether_posthog_answered() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("prod"));
    env.seed(&live.value);
    env.write(
        "hogguard.toml",
        "[audit]\npath = 'audit.jsonl'\n[environments.production.credentials]\npersonal_api_key = 'PROD_KEY'\n",
    );
    let entries = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("audit.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .filter(|entry: &serde_json::Value| entry["action"] == "key.checked")
            .collect()
    };

    // 1: the key has every scope, which the default policy flags.
    keys(&env, &[], &[("PROD_KEY", &live.value)]).assert_code(1);
    // PostHog cannot be reached for the second run: the probe is logged as failed.
    hog.inject(hogguard_testkit::posthog::Fault::status(503).times(100));
    let unreachable = keys(&env, &[], &[("PROD_KEY", &live.value)]);
    insta::assert_snapshot!(unreachable.snapshot(), @"
    exit code: 0
    ----- stdout -----
    production
      personal_api_key (PROD_KEY): personal_api_key phx_...[MASK] unknown (self-hosted: PostHog server error (HTTP 503): Service Unavailable)
    ----- stderr -----
    ");
    let checked = entries(env.path());
    assert_eq!(checked.len(), 2, "{}", unreachable.stderr);
    assert_eq!(checked[0]["resource"], "production.personal_api_key");
    assert_eq!(
        (&checked[0]["metadata"]["status"], &checked[0]["result"]),
        (&serde_json::json!("live"), &serde_json::json!("success"))
    );
    assert_eq!(
        (&checked[1]["metadata"]["status"], &checked[1]["result"]),
        (&serde_json::json!("unknown"), &serde_json::json!("failure"))
    );
}

#[test]
fn a_project_key_shared_between_environments_is_a_warning_not_a_failure() {
    let env = TestEnv::new();
    let public = env.key(Prefix::Project);
    env.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n\
         [environments.production.credentials]\nproject_api_key = 'POSTHOG_PROJECT_API_KEY'\n\
         [environments.development]\nenv_file = '.env'\n\
         [environments.development.credentials]\nproject_api_key = 'POSTHOG_PROJECT_API_KEY'\n",
    );
    env.write(
        ".env.production",
        format!("POSTHOG_PROJECT_API_KEY={public}\n"),
    );
    env.write(".env", format!("POSTHOG_PROJECT_API_KEY={public}\n"));
    let run = keys(&env, &["--color", "never"], &[]);
    insta::assert_snapshot!(run.snapshot(), @"
    exit code: 0
    ----- stdout -----
    development
      project_api_key (POSTHOG_PROJECT_API_KEY): project_api_key phc_...[MASK] public
          ! project-shared-between-environments: the same project key is used in production: its events and flags land in one project; use one PostHog project per environment
    production
      project_api_key (POSTHOG_PROJECT_API_KEY): project_api_key phc_...[MASK] public
          ! project-shared-between-environments: the same project key is used in development: its events and flags land in one project; use one PostHog project per environment
    ----- stderr -----
    ");
    let item = env
        .hogguard(["check", "--offline", "--format", "json"])
        .output()
        .check_item("keys-per-environment");
    assert_eq!(item["status"], "warn", "{item}");
    assert_eq!(
        item["fix"],
        "use one PostHog project (and its phc_ key) per environment"
    );
}
