//! `hogguard audit` and the entries other commands write.

use crate::support::{self, Run, run};
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{FakeHog, Fault, PersonalKeySpec, UserSpec};

fn hogguard(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let Run {
        code,
        stdout,
        stderr,
    } = run(
        support::hogguard(dir).args(args).envs(env.iter().copied()),
        b"",
    );
    (code, stdout, stderr)
}

const CONFIG: &str =
    "[audit]\npath = 'audit/audit.jsonl'\nposthog_project_api_key = 'AUDIT_PROJECT_KEY'\n";

#[test]
fn scripts_log_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hogguard.toml"), CONFIG).unwrap();
    let key = keys::current(Prefix::Personal);
    for (action, result) in [
        ("rotation.started", "success"),
        ("rotation.verified", "failure"),
    ] {
        let meta = format!("old={key}");
        let (code, _, stderr) = hogguard(
            dir.path(),
            &[
                "audit",
                "log",
                "--action",
                action,
                "--resource",
                "production/personal_api_key",
                "--result",
                result,
                "--meta",
                &meta,
            ],
            &[],
        );
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, stdout, _) = hogguard(
        dir.path(),
        &["audit", "show", "--format", "json", "--result", "failure"],
        &[],
    );
    assert_eq!(code, 0);
    let entries: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["seq"], 2);
    assert_eq!(entries[0]["user_id"], "ada");
    assert_eq!(
        entries[0]["metadata"]["old"],
        hogguard_secret::mask(&key),
        "credentials are masked whatever is passed"
    );
    let log = dir.path().join("audit/audit.jsonl");
    assert!(!std::fs::read_to_string(&log).unwrap().contains(&key));

    let (code, stdout, _) = hogguard(dir.path(), &["audit", "verify"], &[]);
    assert_eq!(code, 0, "{stdout}");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replacen("rotation.verified", "rotation.verifieD", 1),
    )
    .unwrap();
    let (code, _, stderr) = hogguard(dir.path(), &["audit", "verify"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("seq 2") && stderr.contains("edited entry"),
        "{stderr}"
    );
}

#[test]
fn verification_is_logged_and_shipped_without_loss() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
    let project_key = keys::current(Prefix::Project);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hogguard.toml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("leak.txt"), format!("{}\n", live.value)).unwrap();
    let env = [
        ("POSTHOG_HOST", hog.base_url()),
        ("AUDIT_PROJECT_KEY", project_key.as_str()),
    ];

    let (code, _, stderr) = hogguard(dir.path(), &["scan", "--verify", "leak.txt"], &env);
    assert_eq!(code, 1, "{stderr}");
    let (_, stdout, _) = hogguard(
        dir.path(),
        &["audit", "show", "--format", "json", "--action", "key.*"],
        &env,
    );
    let entry: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(entry["action"], "key.verified");
    assert_eq!(entry["metadata"]["status"], "live");
    assert_eq!(entry["resource"], hogguard_secret::mask(&live.value));

    // PostHog is down for the first attempts: nothing is lost, nothing is sent twice.
    hog.inject(Fault::status(503).times(20).on_path("/batch"));
    let (code, _, stderr) = hogguard(dir.path(), &["audit", "ship"], &env);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("pending"), "{stderr}");
    hog.clear_faults();
    let (code, _, stderr) = hogguard(dir.path(), &["audit", "ship"], &env);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, _) = hogguard(dir.path(), &["audit", "ship"], &env);
    assert_eq!(code, 0);
    let events = hog.events();
    assert_eq!(events.len(), 1, "{events:?}");
    // The project key travels as capture's token, as PostHog requires; the leaked key never.
    assert!(!format!("{events:?}").contains(live.value.as_str()));
}

#[test]
fn required_audit_fails_closed_before_changing_credentials() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
    let dir = tempfile::tempdir().unwrap();
    // The log's path is a directory: it cannot be written.
    std::fs::create_dir_all(dir.path().join("audit.jsonl")).unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[audit]\npath = 'audit.jsonl'\nrequired = true\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("leak.txt"), format!("{}\n", live.value)).unwrap();
    let (code, _, stderr) = hogguard(
        dir.path(),
        &["scan", "--revoke", "--yes", "leak.txt"],
        &[("POSTHOG_HOST", hog.base_url())],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("required = true"), "{stderr}");
    assert!(
        hog.is_live(&live.value),
        "nothing was revoked without an audit trail"
    );
}

#[test]
fn tokens_of_the_projects_own_rules_are_masked_in_the_log_and_in_posthog() {
    let hog = FakeHog::start();
    let project_key = keys::current(Prefix::Project);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        format!(
            "{CONFIG}\n[[scan.rules]]\nid = 'internal-service-token'\nregex = 'itk_([a-z0-9]{{32}})'\nkeywords = ['itk_']\n"
        ),
    )
    .unwrap();
    let token = "itk_4f9a0c2e7b1d8e6f3a5c9b0d2e4f6a8c";
    let env = [
        ("POSTHOG_HOST", hog.base_url()),
        ("AUDIT_PROJECT_KEY", project_key.as_str()),
    ];
    let (code, _, stderr) = hogguard(
        dir.path(),
        &[
            "audit",
            "log",
            "--action",
            "token.rotated",
            "--resource",
            &format!("billing service {token}"),
            "--result",
            "success",
            "--meta",
            &format!("old={token}"),
        ],
        &env,
    );
    assert_eq!(code, 0, "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("audit/audit.jsonl")).unwrap();
    assert!(log.contains("token.rotated"), "{log}");
    assert!(!log.contains(token), "{log}");

    let (code, _, stderr) = hogguard(dir.path(), &["audit", "ship"], &env);
    assert_eq!(code, 0, "{stderr}");
    let events = format!("{:?}", hog.events());
    assert!(events.contains("token.rotated"), "{events}");
    assert!(!events.contains(token), "{events}");
}

#[test]
fn a_log_rewritten_without_the_key_is_not_shipped() {
    let hog = FakeHog::start();
    let project_key = keys::current(Prefix::Project);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        format!("{CONFIG}checkpoint_key = 'AUDIT_KEY'\n"),
    )
    .unwrap();
    let env = [
        ("POSTHOG_HOST", hog.base_url()),
        ("AUDIT_PROJECT_KEY", project_key.as_str()),
        ("AUDIT_KEY", "a checkpoint key of thirty-two bytes or more"),
    ];
    for action in ["deploy.started", "deploy.finished"] {
        let (code, _, stderr) = hogguard(
            dir.path(),
            &[
                "audit",
                "log",
                "--action",
                action,
                "--resource",
                "web",
                "--result",
                "success",
            ],
            &env,
        );
        assert_eq!(code, 0, "{stderr}");
    }
    // Someone without the key rewrites the whole log and its checkpoint, with hogguard itself
    // and a configuration that names no key.
    std::fs::write(dir.path().join("forger.toml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("audit/audit.jsonl"), "").unwrap();
    std::fs::remove_file(dir.path().join("audit/audit.jsonl.checkpoint")).unwrap();
    let (code, _, stderr) = hogguard(
        dir.path(),
        &[
            "--config",
            "forger.toml",
            "audit",
            "log",
            "--action",
            "deploy.forged",
            "--resource",
            "web",
            "--result",
            "success",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");

    let (code, _, stderr) = hogguard(dir.path(), &["audit", "ship"], &env);
    assert_eq!(code, 2, "{stderr}");
    assert!(hog.events().is_empty(), "{:?}", hog.events());
}
