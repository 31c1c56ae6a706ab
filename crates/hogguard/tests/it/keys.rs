//! `hogguard keys` against the PostHog stand-in: statuses, scopes, ages and policy verdicts.

use crate::support::{self, Run, run};
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, Timestamp, UserSpec};

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

fn keys(
    dir: &std::path::Path,
    hog: &FakeHog,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut command = support::hogguard(dir);
    command
        .arg("keys")
        .args(args)
        .env("POSTHOG_HOST", hog.base_url())
        .envs(env.iter().copied());
    let Run {
        code,
        stdout,
        stderr,
    } = run(&mut command, b"");
    (code, stdout, stderr)
}

#[test]
fn inventory_shows_status_scopes_age_and_verdicts() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let hundred_days_ago = Timestamp::from_unix_seconds(hog.now().unix_seconds() - 100 * 86_400);
    let production = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("prod")
            .scopes(["feature_flag:read", "insight:write"])
            .created_at(hundred_days_ago),
    );
    let development = hog.add_personal_key(user.id, PersonalKeySpec::new("dev").scopes(["*"]));
    let dead = keys::current(Prefix::Personal);
    let public = keys::current(Prefix::Project);
    let webhook = keys::webhook_secret();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hogguard.toml"), CONFIG).unwrap();
    std::fs::write(
        dir.path().join(".env.production"),
        format!(
            "# production\nexport POSTHOG_PERSONAL_API_KEY=\"{}\"\nPOSTHOG_PROJECT_API_KEY={public}\nPOSTHOG_WEBHOOK_SECRET='{webhook}'\n",
            production.value
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env.staging"),
        format!("POSTHOG_PERSONAL_API_KEY={}\n", production.value),
    )
    .unwrap();

    let (code, stdout, stderr) = keys(
        dir.path(),
        &hog,
        &["--format", "json"],
        &[
            ("DEV_POSTHOG_KEY", &development.value),
            ("DEV_OLD_KEY", &dead),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    for secret in [
        &production.value,
        &development.value,
        &dead,
        &public,
        &webhook,
    ] {
        assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
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
}

#[test]
fn one_environment_and_missing_values() {
    let hog = FakeHog::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hogguard.toml"), CONFIG).unwrap();
    let (code, stdout, stderr) = keys(
        dir.path(),
        &hog,
        &["--env", "development", "--color", "never"],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.starts_with("development\n"), "{stdout}");
    assert!(
        stdout.contains("✗ missing-value: DEV_POSTHOG_KEY has no value in process environment"),
        "{stdout}"
    );
    assert!(!stdout.contains("production"));
    let (code, _, stderr) = keys(dir.path(), &hog, &["--env", "qa"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no environment `qa`"), "{stderr}");
}

#[test]
fn every_probe_leaves_an_audit_entry_that_says_whether_posthog_answered() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("prod"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[audit]\npath = 'audit.jsonl'\n[environments.production.credentials]\npersonal_api_key = 'PROD_KEY'\n",
    )
    .unwrap();
    let entries = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("audit.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .filter(|entry: &serde_json::Value| entry["action"] == "key.checked")
            .collect()
    };

    let (code, _, stderr) = keys(dir.path(), &hog, &[], &[("PROD_KEY", &live.value)]);
    // 1: the key has every scope, which the default policy flags.
    assert_eq!(code, 1, "{stderr}");
    // PostHog cannot be reached for the second run: the probe is logged as failed.
    hog.inject(hogguard_testkit::posthog::Fault::status(503).times(100));
    let (_, _, stderr) = keys(dir.path(), &hog, &[], &[("PROD_KEY", &live.value)]);
    let checked = entries(dir.path());
    assert_eq!(checked.len(), 2, "{stderr}");
    assert_eq!(checked[0]["resource"], "production.personal_api_key");
    assert_eq!(
        (&checked[0]["metadata"]["status"], &checked[0]["result"]),
        (&serde_json::json!("live"), &serde_json::json!("success"))
    );
    assert_eq!(
        (&checked[1]["metadata"]["status"], &checked[1]["result"]),
        (&serde_json::json!("unknown"), &serde_json::json!("failure"))
    );
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!log.contains(live.value.as_str()));
}
