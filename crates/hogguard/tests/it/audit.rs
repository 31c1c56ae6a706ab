//! `hogguard audit` and the entries other commands write.

use crate::support::TestEnv;
use hogguard_testkit::keys::Prefix;
use hogguard_testkit::posthog::{Fault, PersonalKeySpec, UserSpec};

/// `hogguard ARGS` in `repo` with `vars` set: exit code, standard output, standard error.
fn hogguard(repo: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = repo.hogguard(args);
    for (name, value) in vars {
        command = command.env(name, value);
    }
    let run = command.output();
    (run.code, run.stdout, run.stderr)
}

const CONFIG: &str =
    "[audit]\npath = 'audit/audit.jsonl'\nposthog_project_api_key = 'AUDIT_PROJECT_KEY'\n";

#[test]
fn scripts_log_and_tampering_is_named() {
    let repo = TestEnv::new();
    repo.write("hogguard.toml", CONFIG);
    let key = repo.key(Prefix::Personal);
    for (action, result) in [
        ("rotation.started", "success"),
        ("rotation.verified", "failure"),
    ] {
        let meta = format!("old={key}");
        let (code, _, stderr) = hogguard(
            &repo,
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
        &repo,
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
    let log = repo.path().join("audit/audit.jsonl");
    let shown = repo.hogguard(["audit", "show"]).output();
    insta::assert_snapshot!(shown.snapshot(), @r#"
    exit code: 0
    ----- stdout -----
        1 [TIME] ada rotation.started production/personal_api_key success {"old":"phx_...[MASK]"}
        2 [TIME] ada rotation.verified production/personal_api_key failure {"old":"phx_...[MASK]"}
    ----- stderr -----
    "#);

    let (code, stdout, _) = hogguard(&repo, &["audit", "verify"], &[]);
    assert_eq!(code, 0, "{stdout}");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replacen("rotation.verified", "rotation.verifieD", 1),
    )
    .unwrap();
    let tampered = repo.hogguard(["audit", "verify"]).output();
    insta::assert_snapshot!(tampered.snapshot(), @"
    exit code: 1
    ----- stdout -----
    ----- stderr -----
    error: audit/audit.jsonl does not verify: seq 2 (line 2): the hash does not match the line's content (edited entry)
    ");
}

#[test]
fn verification_is_logged_and_shipped_without_loss() {
    let repo = TestEnv::new();
    let hog = repo.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
    repo.seed(&live.value);
    let project_key = repo.key(Prefix::Project);
    repo.write("hogguard.toml", CONFIG);
    repo.write("leak.txt", format!("{}\n", live.value));
    let env = [("AUDIT_PROJECT_KEY", project_key.as_str())];

    let (code, _, stderr) = hogguard(&repo, &["scan", "--verify", "leak.txt"], &env);
    assert_eq!(code, 1, "{stderr}");
    let (_, stdout, _) = hogguard(
        &repo,
        &["audit", "show", "--format", "json", "--action", "key.*"],
        &env,
    );
    let entry: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(entry["action"], "key.verified");
    assert_eq!(entry["metadata"]["status"], "live");
    assert_eq!(entry["resource"], hogguard_secret::mask(&live.value));

    // PostHog is down for the first attempts: nothing is lost, nothing is sent twice.
    hog.inject(Fault::status(503).times(20).on_path("/batch"));
    let down = repo
        .hogguard(["audit", "ship"])
        .env("AUDIT_PROJECT_KEY", &project_key)
        .output();
    insta::assert_snapshot!(down.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    shipped 0 entries; 1 pending
    error: PostHog did not take 1 pending entries; they stay in the log's outbox, run `hogguard audit ship` again later: PostHog server error (HTTP 503): transient error, please retry
    ");
    hog.clear_faults();
    let (code, _, stderr) = hogguard(&repo, &["audit", "ship"], &env);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, _) = hogguard(&repo, &["audit", "ship"], &env);
    assert_eq!(code, 0);
    let events = hog.events();
    assert_eq!(events.len(), 1, "{events:?}");
    // The project key travels as capture's token, as PostHog requires; the leaked key never.
    assert!(!format!("{events:?}").contains(live.value.as_str()));
}

#[test]
fn required_audit_fails_closed_before_changing_credentials() {
    let repo = TestEnv::new();
    let hog = repo.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
    repo.seed(&live.value);
    // The log's path is a directory: it cannot be written.
    std::fs::create_dir_all(repo.path().join("audit.jsonl")).unwrap();
    repo.write(
        "hogguard.toml",
        "[audit]\npath = 'audit.jsonl'\nrequired = true\n",
    );
    repo.write("leak.txt", format!("{}\n", live.value));
    let (code, _, stderr) = hogguard(&repo, &["scan", "--revoke", "--yes", "leak.txt"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("required = true"), "{stderr}");
    assert!(
        hog.is_live(&live.value),
        "nothing was revoked without an audit trail"
    );
}

#[test]
fn tokens_of_the_projects_own_rules_are_masked_in_the_log_and_in_posthog() {
    let repo = TestEnv::new();
    let hog = repo.posthog();
    let project_key = repo.key(Prefix::Project);
    repo.write("hogguard.toml", format!(
            "{CONFIG}\n[[scan.rules]]\nid = 'internal-service-token'\nregex = 'itk_([a-z0-9]{{32}})'\nkeywords = ['itk_']\n"
        ));
    let token = "itk_4f9a0c2e7b1d8e6f3a5c9b0d2e4f6a8c";
    repo.seed(token);
    let env = [("AUDIT_PROJECT_KEY", project_key.as_str())];
    let (code, _, stderr) = hogguard(
        &repo,
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
    let log = std::fs::read_to_string(repo.path().join("audit/audit.jsonl")).unwrap();
    assert!(log.contains("token.rotated"), "{log}");
    assert!(!log.contains(token), "{log}");

    let (code, _, stderr) = hogguard(&repo, &["audit", "ship"], &env);
    assert_eq!(code, 0, "{stderr}");
    let events = format!("{:?}", hog.events());
    assert!(events.contains("token.rotated"), "{events}");
    assert!(!events.contains(token), "{events}");
}

#[test]
fn a_log_rewritten_without_the_key_is_not_shipped() {
    let repo = TestEnv::new();
    let hog = repo.posthog();
    let project_key = repo.key(Prefix::Project);
    let checkpoint_key = "a checkpoint key of thirty-two bytes or more";
    repo.seed(checkpoint_key);
    repo.write(
        "hogguard.toml",
        format!("{CONFIG}checkpoint_key = 'AUDIT_KEY'\n"),
    );
    let env = [
        ("AUDIT_PROJECT_KEY", project_key.as_str()),
        ("AUDIT_KEY", checkpoint_key),
    ];
    for action in ["deploy.started", "deploy.finished"] {
        let (code, _, stderr) = hogguard(
            &repo,
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
    repo.write("forger.toml", CONFIG);
    repo.write("audit/audit.jsonl", "");
    std::fs::remove_file(repo.path().join("audit/audit.jsonl.checkpoint")).unwrap();
    let (code, _, stderr) = hogguard(
        &repo,
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

    let (code, _, stderr) = hogguard(&repo, &["audit", "ship"], &env);
    assert_eq!(code, 2, "{stderr}");
    assert!(hog.events().is_empty(), "{:?}", hog.events());
}
