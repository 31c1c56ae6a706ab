//! `hogguard webhook secret|sign|verify` end to end.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{Output, TestEnv};

#[path = "../../../hogguard-webhook/tests/svix/mod.rs"]
mod svix;

/// A new secret from `hogguard webhook secret`, watched for leaks from now on and set as `var`
/// for every later run.
fn new_secret(env: &TestEnv, var: &str) -> String {
    let run = env.hogguard(["webhook", "secret"]).output();
    run.assert_code(0);
    let secret = run.stdout.trim().to_owned();
    env.seed(&secret);
    env.set_var(var, &secret);
    secret
}

/// Signs `body` with the secret in `SECRET` and returns the headers as `--header` arguments.
fn sign(env: &TestEnv, scheme: &str, body: &[u8]) -> Vec<String> {
    let run = env
        .hogguard([
            "webhook",
            "sign",
            "--scheme",
            scheme,
            "--secret-env",
            "SECRET",
            "--timestamp",
            "1714000000",
            "--id",
            "msg_42",
        ])
        .stdin(body)
        .output();
    run.assert_code(0);
    run.stdout.lines().map(str::to_owned).collect()
}

/// Runs `webhook verify` with `headers` and `body` at time `now`, secrets from `vars`.
fn verify<'e>(
    env: &'e TestEnv,
    scheme: &str,
    vars: &str,
    headers: &[String],
    now: &str,
    body: &[u8],
) -> Output<'e> {
    let mut args = vec![
        "webhook",
        "verify",
        "--scheme",
        scheme,
        "--secret-env",
        vars,
        "--now",
        now,
    ];
    for header in headers {
        args.extend(["--header", header.as_str()]);
    }
    env.hogguard(args).stdin(body).output()
}

#[test]
fn secrets_are_fresh_standard_webhooks_secrets() {
    let env = TestEnv::new();
    let (a, b) = (new_secret(&env, "A"), new_secret(&env, "B"));
    assert!(a.starts_with("whsec_") && a.len() == 6 + 44, "{a}");
    assert_ne!(a, b);
}

#[test]
fn every_scheme_round_trips_and_rejects_a_tampered_body() {
    let env = TestEnv::new();
    new_secret(&env, "SECRET");
    for scheme in ["standard", "hex", "github", "stripe"] {
        let headers = sign(&env, scheme, b"{\"event\":\"x\"}");
        let ok = verify(
            &env,
            scheme,
            "SECRET",
            &headers,
            "1714000010",
            b"{\"event\":\"x\"}",
        );
        ok.assert_code(0);
        let bad = verify(
            &env,
            scheme,
            "SECRET",
            &headers,
            "1714000010",
            b"{\"event\":\"y\"}",
        );
        bad.assert_code(1);
        assert_eq!(
            bad.stderr, "error: invalid delivery: no signature matched an active secret\n",
            "{scheme}"
        );
    }
}

#[test]
fn the_tolerance_holds_exactly_at_its_edges() {
    let env = TestEnv::new();
    new_secret(&env, "SECRET");
    let headers = sign(&env, "standard", b"body");
    for (now, code) in [
        ("1714000300", 0),
        ("1714000301", 1),
        ("1713999700", 0),
        ("1713999699", 1),
    ] {
        verify(&env, "standard", "SECRET", &headers, now, b"body").assert_code(code);
    }
    insta::assert_snapshot!(
        verify(&env, "standard", "SECRET", &headers, "1714000301", b"body").snapshot(),
        @"
    exit code: 1
    ----- stdout -----
    ----- stderr -----
    error: invalid delivery: timestamp is too old (301 s in the past, beyond the tolerance)
    "
    );
}

#[test]
fn either_secret_of_a_rotation_verifies() {
    let env = TestEnv::new();
    new_secret(&env, "SECRET");
    new_secret(&env, "NEW");
    let headers = sign(&env, "standard", b"body");
    let run = verify(
        &env,
        "standard",
        "NEW,SECRET",
        &headers,
        "1714000000",
        b"body",
    );
    insta::assert_snapshot!(run.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    valid standard delivery msg_42, signed with SECRET
    ");
    verify(&env, "standard", "NEW", &headers, "1714000000", b"body").assert_code(1);
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    let run = verify(&env, "standard", "UNSET_SECRET_VAR", &[], "1", b"");
    insta::assert_snapshot!(run.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: UNSET_SECRET_VAR is not set (--secret-env names it): looked in the process environment
    ");
    env.set_var("S", "whsec_x");
    let run = verify(&env, "standard", "S", &["no colon".to_owned()], "1", b"");
    insta::assert_snapshot!(run.snapshot(), @r#"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: --header "no colon" is not `name: value`
    "#);
}

#[test]
fn bodies_come_from_files_byte_for_byte() {
    let env = TestEnv::new();
    new_secret(&env, "SECRET");
    // Not UTF-8 and with a trailing newline: the file's exact bytes are what is signed.
    let body: &[u8] = b"{\"event\":\"$pageview\"}\n\xff\xfe";
    env.write("payload.bin", body);
    let sign_args = [
        "webhook",
        "sign",
        "--secret-env",
        "SECRET",
        "--timestamp",
        "1714000000",
        "--id",
        "msg_file",
    ];

    let signed = env
        .hogguard(sign_args.iter().chain(&["payload.bin"]))
        .output();
    signed.assert_code(0);
    let headers: Vec<String> = signed.stdout.lines().map(str::to_owned).collect();
    // The same bytes from standard input carry the same signature.
    let from_stdin = env.hogguard(sign_args).stdin(body).output();
    assert_eq!(signed.stdout, from_stdin.stdout);
    let mut args = vec![
        "webhook",
        "verify",
        "--secret-env",
        "SECRET",
        "--now",
        "1714000001",
    ];
    for header in &headers {
        args.extend(["--header", header.as_str()]);
    }
    args.push("payload.bin");
    env.hogguard(&args).output().assert_code(0);

    env.write("payload.bin", &body[..body.len() - 1]);
    env.hogguard(&args).output().assert_code(1);

    *args.last_mut().unwrap() = "missing.json";
    let missing = env.hogguard(&args).output();
    missing.assert_code(2);
    assert!(
        missing.stderr.contains("missing.json"),
        "{}",
        missing.stderr
    );
}

#[test]
fn svix_branded_deliveries_verify_and_ours_verify_in_svix() {
    // See: issue 12 point 17 (`verify` said "missing header `webhook-id`").
    let svix = svix::Svix::install();
    let env = TestEnv::new();
    let secret = new_secret(&env, "SECRET");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = r#"{"event":"$pageview","properties":{"title":"Café"}}"#;
    let delivery = svix.sign(&secret, "msg_from_svix", now, body);
    let headers: Vec<String> = delivery
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let now_text = now.to_string();
    let verified = verify(
        &env,
        "standard",
        "SECRET",
        &headers,
        &now_text,
        body.as_bytes(),
    );
    insta::assert_snapshot!(verified.snapshot(), @"
    exit code: 0
    ----- stdout -----
    ----- stderr -----
    valid standard delivery msg_from_svix
    ");

    let mut disagreeing = headers.clone();
    disagreeing.push("webhook-id: msg_someone_else".to_owned());
    let refused = verify(
        &env,
        "standard",
        "SECRET",
        &disagreeing,
        &now_text,
        body.as_bytes(),
    );
    insta::assert_snapshot!(refused.snapshot(), @"
    exit code: 1
    ----- stdout -----
    ----- stderr -----
    error: invalid delivery: malformed header `webhook-id`: `webhook-id` and `svix-id` disagree
    ");

    let signed = env
        .hogguard([
            "webhook",
            "sign",
            "--secret-env",
            "SECRET",
            "--id",
            "msg_ours",
        ])
        .stdin(body)
        .output();
    signed.assert_code(0);
    let ours: Vec<(String, String)> = signed
        .stdout
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    assert_eq!(svix.verify(&secret, &ours, body), Ok(()));
}
