//! `scan --verify` and `scan --revoke` over real HTTP against the PostHog stand-in.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{self, Run, run};
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{FakeHog, Fault, Gate, PersonalKeySpec, UserSpec};

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

#[test]
fn ctrl_c_during_a_revocation_lets_it_finish_and_be_audited_then_stops() {
    let hog = FakeHog::start();
    let user = hog.add_user(UserSpec::new("ops@acme.test"));
    let first = hog.add_personal_key(user.id, PersonalKeySpec::new("first"));
    let second = hog.add_personal_key(user.id, PersonalKeySpec::new("second"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leak.txt"),
        format!("{}\n{}\n", first.value, second.value),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[audit]\npath = 'audit.jsonl'\n",
    )
    .unwrap();
    // The first revocation is held at PostHog until the interrupt has been taken.
    let gate = Gate::new();
    hog.inject(Fault::hold(&gate).on_path("/api/revoke_leaked_key"));

    let mut child = support::hogguard(dir.path())
        .args(["scan", "--revoke", "--yes", "--color", "never", "leak.txt"])
        .env("POSTHOG_HOST", hog.base_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hogguard starts");
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
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
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
    let verified = run(support::hogguard(dir.path()).args(["audit", "verify"]), b"");
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    for secret in [&first.value, &second.value] {
        for text in [&stdout, &stderr, &log] {
            assert!(!text.contains(secret.as_str()));
        }
    }
}
