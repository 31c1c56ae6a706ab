//! `scan --verify` and `scan --revoke` over real HTTP against the PostHog stand-in.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Output, TestEnv};
use hogguard_testkit::keys::Prefix;
use hogguard_testkit::posthog::{Fault, Gate, PersonalKeySpec, UserSpec};

/// `hogguard scan ARGS` against the environment's PostHog stand-in.
fn scan<'e>(env: &'e TestEnv, args: &[&str]) -> Output<'e> {
    env.posthog();
    env.hogguard(["scan"]).args(args).output()
}

#[test]
fn verify_tells_live_from_dead_with_one_probe_per_secret() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("ci").scopes(["feature_flag:read", "insight:read"]),
    );
    env.seed(&live.value);
    let dead = env.key(Prefix::Personal);
    let public = env.key(Prefix::Project);
    env.write(
        "a.env",
        format!("KEY={}\nOLD={dead}\nPUB={public}\n", live.value),
    );
    env.write("b.py", format!("key = '{}'\n", live.value));

    let run = scan(&env, &["--verify", "--format", "json"]);
    run.assert_code(1);
    let report = run.json();
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
    hog.reset_requests();
    let human = scan(&env, &["--verify", "b.py", "a.env"]);
    insta::assert_snapshot!(human.snapshot(), @"
    exit code: 1
    ----- stdout -----
    a.env:1:5: critical posthog-personal-api-key phx_...[MASK]
        live: scopes feature_flag:read insight:read, every project
    a.env:2:5: critical posthog-personal-api-key phx_...[MASK]
        invalid
    a.env:3:5: info posthog-project-api-key phc_...[MASK]
    b.py:1:8: critical posthog-personal-api-key phx_...[MASK]
        live: scopes feature_flag:read insight:read, every project
    3 secrets found, 1 public project key listed (2 inputs, [SIZE] in [DURATION])
    ----- stderr -----
    ");
}

#[test]
fn revoke_needs_consent_then_rolls_live_keys() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let live = hog.add_personal_key(user.id, PersonalKeySpec::new("leaked"));
    env.seed(&live.value);
    env.write("leak.txt", format!("{}\n", live.value));

    let refused = scan(&env, &["--revoke"]);
    insta::assert_snapshot!(refused.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: --revoke needs --yes when standard input is not a terminal
    ");
    assert!(hog.is_live(&live.value));

    let run = scan(&env, &["--revoke", "--yes", "--color", "never"]);
    insta::assert_snapshot!(run.snapshot(), @"
    exit code: 1
    ----- stdout -----
    leak.txt:1:1: critical posthog-personal-api-key phx_...[MASK]
        live: scopes *, every project
        revoked in http://127.0.0.1:[PORT]: PostHog rolled the personal api key
    1 secret found (1 inputs, [SIZE] in [DURATION])
    ----- stderr -----
    ");
    assert!(!hog.is_live(&live.value));
}

#[test]
fn ctrl_c_during_a_revocation_lets_it_finish_and_be_audited_then_stops() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let first = hog.add_personal_key(user.id, PersonalKeySpec::new("first"));
    let second = hog.add_personal_key(user.id, PersonalKeySpec::new("second"));
    env.seed(&first.value);
    env.seed(&second.value);
    env.write("leak.txt", format!("{}\n{}\n", first.value, second.value));
    env.write("hogguard.toml", "[audit]\npath = 'audit.jsonl'\n");
    // The first revocation is held at PostHog until the interrupt has been taken.
    let gate = Gate::new();
    hog.inject(Fault::hold(&gate).on_path("/api/revoke_leaked_key"));

    let mut child = env
        .hogguard(["scan", "--revoke", "--yes", "--color", "never", "leak.txt"])
        .spawn();
    let (lines, stderr_lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = lines.send(line.expect("UTF-8 errors"));
        }
    });
    assert!(
        gate.wait_for_arrivals(1, Duration::from_secs(60)),
        "the first revocation never reached PostHog"
    );
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut stderr = Vec::new();
    loop {
        let line = stderr_lines
            .recv_timeout(Duration::from_secs(60))
            .expect("hogguard acknowledges the interrupt");
        let acknowledged = line.contains("finishing the request in flight");
        stderr.push(line);
        if acknowledged {
            break;
        }
    }
    gate.open();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    stderr.extend(stderr_lines.try_iter());
    let stderr = stderr.join("\n");

    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        !hog.is_live(&first.value),
        "the revocation in flight completed"
    );
    assert!(
        hog.is_live(&second.value),
        "nothing new started after Ctrl-C"
    );
    assert_eq!(hog.request_count("/api/revoke_leaked_key/"), 1);
    assert!(
        stderr.contains("1 live secrets were not reported"),
        "{stderr}"
    );
    assert!(
        stdout.contains("PostHog rolled the personal api key"),
        "{stdout}"
    );

    // The revocation that happened is in the log, and the log is whole.
    let log = env.read("audit.jsonl");
    let revoked: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|entry| entry["action"] == "key.revoke_reported")
        .collect();
    assert_eq!(revoked.len(), 1, "{log}");
    // The intent came first, and only for the key that was revoked.
    let started: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|entry| entry["action"] == "key.revoke_started")
        .collect();
    assert_eq!(started.len(), 1, "{log}");
    assert_eq!(started[0]["resource"], revoked[0]["resource"]);
    assert!(started[0]["seq"].as_u64() < revoked[0]["seq"].as_u64());
    assert_eq!(revoked[0]["resource"], hogguard_secret::mask(&first.value));
    assert_eq!(revoked[0]["result"], "success");
    env.hogguard(["audit", "verify"]).output().assert_code(0);
    for (what, text) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("audit log", &log),
    ] {
        env.assert_no_leak(what, text);
    }
}
