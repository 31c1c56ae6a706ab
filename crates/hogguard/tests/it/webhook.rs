//! `hogguard webhook secret|sign|verify` end to end.

use std::path::Path;

use crate::support::{self, Run, run};

fn hogguard(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Run {
    run(
        support::hogguard(Path::new("."))
            .args(args)
            .envs(env.iter().copied()),
        stdin,
    )
}

fn new_secret() -> String {
    let run = hogguard(&["webhook", "secret"], &[], b"");
    assert_eq!(run.code, 0);
    run.stdout.trim().to_owned()
}

/// Signs `body` and returns the headers as `--header` arguments.
fn sign(scheme: &str, secret: &str, body: &[u8]) -> Vec<String> {
    let run = hogguard(
        &[
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
        ],
        &[("SECRET", secret)],
        body,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains(secret));
    run.stdout.lines().map(str::to_owned).collect()
}

fn verify(
    scheme: &str,
    env: &[(&str, &str)],
    vars: &str,
    headers: &[String],
    now: &str,
    body: &[u8],
) -> Run {
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
    hogguard(&args, env, body)
}

#[test]
fn secrets_are_fresh_standard_webhooks_secrets() {
    let (a, b) = (new_secret(), new_secret());
    assert!(a.starts_with("whsec_") && a.len() == 6 + 44, "{a}");
    assert_ne!(a, b);
}

#[test]
fn every_scheme_round_trips_and_rejects_a_tampered_body() {
    let secret = new_secret();
    let env = [("SECRET", secret.as_str())];
    for scheme in ["standard", "hex", "github", "stripe"] {
        let headers = sign(scheme, &secret, b"{\"event\":\"x\"}");
        let ok = verify(
            scheme,
            &env,
            "SECRET",
            &headers,
            "1714000010",
            b"{\"event\":\"x\"}",
        );
        assert_eq!(ok.code, 0, "{scheme}: {}", ok.stderr);
        let bad = verify(
            scheme,
            &env,
            "SECRET",
            &headers,
            "1714000010",
            b"{\"event\":\"y\"}",
        );
        assert_eq!(bad.code, 1, "{scheme}");
        assert!(bad.stderr.contains("invalid delivery"), "{}", bad.stderr);
        assert!(!bad.stderr.contains(&secret) && !ok.stderr.contains(&secret));
    }
}

#[test]
fn the_tolerance_holds_exactly_at_its_edges() {
    let secret = new_secret();
    let env = [("SECRET", secret.as_str())];
    let headers = sign("standard", &secret, b"body");
    for (now, code) in [
        ("1714000300", 0),
        ("1714000301", 1),
        ("1713999700", 0),
        ("1713999699", 1),
    ] {
        let run = verify("standard", &env, "SECRET", &headers, now, b"body");
        assert_eq!(run.code, code, "now {now}: {}", run.stderr);
    }
}

#[test]
fn either_secret_of_a_rotation_verifies() {
    let (old, new) = (new_secret(), new_secret());
    let env = [("OLD", old.as_str()), ("NEW", new.as_str())];
    let headers = sign("standard", &old, b"body");
    let run = verify("standard", &env, "NEW,OLD", &headers, "1714000000", b"body");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("signed with OLD"), "{}", run.stderr);
    assert_eq!(
        verify("standard", &env, "NEW", &headers, "1714000000", b"body").code,
        1
    );
}

#[test]
fn usage_errors_exit_2() {
    let run = verify("standard", &[], "UNSET_SECRET_VAR", &[], "1", b"");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("UNSET_SECRET_VAR is not set"),
        "{}",
        run.stderr
    );
    let run = verify(
        "standard",
        &[("S", "whsec_x")],
        "S",
        &["no colon".to_owned()],
        "1",
        b"",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn bodies_come_from_files_byte_for_byte() {
    let secret = new_secret();
    let env = [("SECRET", secret.as_str())];
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8 and with a trailing newline: the file's exact bytes are what is signed.
    let body: &[u8] = b"{\"event\":\"$pageview\"}\n\xff\xfe";
    std::fs::write(dir.path().join("payload.bin"), body).unwrap();
    let in_dir = |args: &[&str]| {
        run(
            support::hogguard(dir.path())
                .args(args)
                .envs(env.iter().copied()),
            b"",
        )
    };

    let signed = in_dir(&[
        "webhook",
        "sign",
        "--secret-env",
        "SECRET",
        "--timestamp",
        "1714000000",
        "--id",
        "msg_file",
        "payload.bin",
    ]);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    let headers: Vec<String> = signed.stdout.lines().map(str::to_owned).collect();
    // The same bytes from standard input carry the same signature.
    assert_eq!(headers, {
        let run = hogguard(
            &[
                "webhook",
                "sign",
                "--secret-env",
                "SECRET",
                "--timestamp",
                "1714000000",
                "--id",
                "msg_file",
            ],
            &env,
            body,
        );
        run.stdout.lines().map(str::to_owned).collect::<Vec<_>>()
    });
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
    assert_eq!(in_dir(&args).code, 0);

    std::fs::write(dir.path().join("payload.bin"), &body[..body.len() - 1]).unwrap();
    let tampered = in_dir(&args);
    assert_eq!(tampered.code, 1, "{}", tampered.stderr);

    *args.last_mut().unwrap() = "missing.json";
    let missing = in_dir(&args);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("missing.json"),
        "{}",
        missing.stderr
    );
}
