//! `scan --verify` and `scan --revoke` over real HTTP against the PostHog stand-in.

use crate::support::{self, Run, run};
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, UserSpec};

fn scan(dir: &std::path::Path, hog: &FakeHog, args: &[&str]) -> Run {
    run(
        support::hogguard(dir)
            .arg("scan")
            .args(args)
            .env("POSTHOG_HOST", hog.base_url()),
        b"",
    )
}

#[test]
fn verify_tells_live_from_dead_with_one_probe_per_secret() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("ci").scopes(["feature_flag:read", "insight:read"]),
    );
    let dead = keys::current(Prefix::Personal);
    let public = keys::current(Prefix::Project);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.env"),
        format!("KEY={}\nOLD={dead}\nPUB={public}\n", live.value),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.py"), format!("key = '{}'\n", live.value)).unwrap();

    let run = scan(dir.path(), &hog, &["--verify", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let status_of = |mask: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["masked"] == mask)
            .map(|f| f["verification"].clone())
            .collect::<Vec<_>>()
    };
    let live_checks = status_of(&hogguard_secret::mask(&live.value));
    assert_eq!(live_checks.len(), 2);
    for check in &live_checks {
        assert_eq!(check["status"], "live");
        assert_eq!(
            check["scopes"],
            serde_json::json!(["feature_flag:read", "insight:read"])
        );
    }
    assert_eq!(
        status_of(&hogguard_secret::mask(&dead))[0]["status"],
        "invalid"
    );
    assert_eq!(
        status_of(&hogguard_secret::mask(&public))[0],
        serde_json::Value::Null,
        "phc_ keys are never probed"
    );
    // Two distinct secrets, three findings: two probes.
    assert_eq!(hog.request_count("/api/personal_api_keys/@current/"), 2);
    for secret in [&live.value, &dead, &public] {
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
    }
}

#[test]
fn revoke_needs_consent_then_rolls_live_keys() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leak.txt"), format!("{}\n", live.value)).unwrap();

    let refused = scan(dir.path(), &hog, &["--revoke"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("--revoke needs --yes"),
        "{}",
        refused.stderr
    );
    assert!(hog.is_live(&live.value));

    let run = scan(dir.path(), &hog, &["--revoke", "--yes", "--color", "never"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("PostHog rolled the personal api key"),
        "{}",
        run.stdout
    );
    assert!(!hog.is_live(&live.value));
    assert!(!run.stdout.contains(&live.value) && !run.stderr.contains(&live.value));
}
