//! `hogguard webhook serve` end to end: a real upstream on loopback, signed and forged
//! deliveries, SIGTERM, and the summary in the audit log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStderr, Command};
use std::thread::JoinHandle;

use crate::support::{TestEnv, http_exchange};

/// Sends one HTTP/1.1 request and returns the status code and the body.
fn post(addr: &str, headers: &[String], body: &str) -> (u16, String) {
    let mut request = format!(
        "POST /hooks/posthog?x=1 HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    http_exchange(addr, &request)
}

/// An upstream that answers one request per status in `statuses`, in order (each on its own
/// connection, body `ok`), and hands over every request it received, head and body.
fn upstream(statuses: &[u16]) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let statuses = statuses.to_vec();
    let handle = std::thread::spawn(move || {
        statuses
            .into_iter()
            .map(|status| {
                let (stream, _) = listener.accept().unwrap();
                answer_one(stream, status)
            })
            .collect()
    });
    (addr, handle)
}

/// Reads one request from `stream`, answers it with `status`, and returns the request.
fn answer_one(stream: TcpStream, status: u16) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let answer =
        format!("HTTP/1.1 {status} Answer\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    reader.get_mut().write_all(answer.as_bytes()).unwrap();
    format!("{head}{}", String::from_utf8(body).unwrap())
}

/// A running `hogguard webhook serve` with its secret in `SECRET`.
struct Serving {
    child: Child,
    addr: String,
    log: BufReader<ChildStderr>,
    start_lines: String,
}

impl Serving {
    fn start(env: &TestEnv, upstream: &str, extra: &[&str]) -> Serving {
        let forward = format!("http://{upstream}");
        let mut args = vec![
            "webhook",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            &forward,
            "--secret-env",
            "SECRET",
        ];
        args.extend(extra);
        let mut child = env.hogguard(args).spawn();
        let mut log = BufReader::new(child.stderr.take().unwrap());
        // Notes about the configuration come before the gateway says where it listens.
        let mut start_lines = String::new();
        let addr = loop {
            let read = log.read_line(&mut start_lines).unwrap();
            assert_ne!(read, 0, "the gateway stopped: {start_lines}");
            let last = start_lines.lines().last().unwrap_or_default();
            if let Some(listening) = last.split("listening on ").nth(1) {
                break listening.split(',').next().unwrap().to_owned();
            }
        };
        Serving {
            child,
            addr,
            log,
            start_lines,
        }
    }

    /// Sends SIGTERM, checks the exit code and the log for leaks, and returns the whole log.
    /// Stops the gateway with SIGTERM, as a service manager does: a clean exit 0.
    fn stop(self, env: &TestEnv) -> String {
        self.stop_with(env, "-TERM", 0)
    }

    /// Stops the gateway with `signal` and checks that it exits with `code`; returns its log.
    fn stop_with(mut self, env: &TestEnv, signal: &str, code: i32) -> String {
        let killed = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "stopped with {signal}");
        let mut log = self.start_lines;
        self.log.read_to_string(&mut log).unwrap();
        env.assert_no_leak("the gateway's log", &log);
        log
    }
}

/// An environment with a new webhook secret in `SECRET`, watched for leaks.
fn env_with_secret() -> TestEnv {
    let env = TestEnv::new();
    let run = env.hogguard(["webhook", "secret"]).output();
    run.assert_code(0);
    let secret = run.stdout.trim();
    env.seed(secret);
    env.set_var("SECRET", secret);
    env
}

/// Signature headers for `body` (`scheme`; Standard Webhooks with a new id, now), one
/// `name: value` each.
fn sign(env: &TestEnv, scheme: &str, body: &str) -> Vec<String> {
    let signed = env
        .hogguard([
            "webhook",
            "sign",
            "--scheme",
            scheme,
            "--secret-env",
            "SECRET",
        ])
        .stdin(body)
        .output();
    signed.assert_code(0);
    signed.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn forwards_verified_deliveries_and_logs_a_summary_on_sigterm() {
    let env = env_with_secret();
    env.write("hogguard.toml", "[audit]\npath = 'audit.jsonl'\n");
    let (upstream_addr, received) = upstream(&[200]);
    let gateway = Serving::start(&env, &upstream_addr, &[]);

    let body = r#"{"event":"$pageview"}"#;
    let headers = sign(&env, "standard", body);
    assert_eq!(post(&gateway.addr, &headers, body), (200, "ok".to_owned()));
    let seen = received.join().unwrap();
    assert!(
        seen[0].starts_with("POST /hooks/posthog?x=1 HTTP/1.1\r\n"),
        "{seen:?}"
    );
    assert!(seen[0].ends_with(body));

    let forged: Vec<String> = headers.iter().map(|h| h.replace("v1,", "v1,A")).collect();
    assert_eq!(
        post(&gateway.addr, &forged, body),
        (401, r#"{"error":"invalid signature"}"#.to_owned())
    );
    gateway.stop(&env);

    let entries = env.hogguard(["audit", "show", "--format", "json"]).output();
    let entry = entries.json();
    assert_eq!(entry["action"], "webhook.gateway_stopped");
    assert_eq!(entry["metadata"]["forwarded"], 1);
    assert_eq!(entry["metadata"]["rejected"], 1);
}

#[test]
fn ctrl_c_stops_the_gateway_with_130_after_logging_its_summary() {
    // See: issue 12 point 8 (Ctrl-C exited 0, as if the gateway had been stopped on purpose).
    let env = env_with_secret();
    env.write("hogguard.toml", "[audit]\npath = 'audit.jsonl'\n");
    let (upstream_addr, _received) = upstream(&[]);
    let gateway = Serving::start(&env, &upstream_addr, &[]);
    gateway.stop_with(&env, "-INT", 130);
    let entry = env
        .hogguard(["audit", "show", "--format", "json"])
        .output()
        .json();
    assert_eq!(entry["action"], "webhook.gateway_stopped");
    assert_eq!(entry["metadata"]["stopped_by"], "interrupt");
}

#[test]
fn a_delivery_the_app_failed_is_forwarded_again_when_the_sender_retries() {
    // See: issue 11 point 11 (the retry of a delivery the app answered 500 got 401 "replay").
    let env = env_with_secret();
    let (upstream_addr, received) = upstream(&[500, 200]);
    let gateway = Serving::start(&env, &upstream_addr, &[]);
    let body = r#"{"event":"$pageview"}"#;
    let headers = sign(&env, "standard", body);

    assert_eq!(post(&gateway.addr, &headers, body).0, 500);
    assert_eq!(post(&gateway.addr, &headers, body).0, 200);
    assert_eq!(received.join().unwrap().len(), 2);
    assert_eq!(post(&gateway.addr, &headers, body).0, 401);
    let log = gateway.stop(&env);
    assert!(
        log.contains("forwarded=2 ") && log.contains("rejected.replay=1"),
        "{log}"
    );
}

#[test]
fn github_and_hex_deliveries_are_forwarded_once_within_the_announced_window() {
    // See: issue 11 point 12 (the same delivery was forwarded every time).
    let env = env_with_secret();
    for scheme in ["github", "hex"] {
        let (upstream_addr, received) = upstream(&[200]);
        let args = ["--scheme", scheme, "--tolerance", "60"];
        let gateway = Serving::start(&env, &upstream_addr, &args);
        let body = r#"{"event":"$pageview","uuid":"0190e5a1"}"#;
        let headers = sign(&env, scheme, body);
        assert_eq!(post(&gateway.addr, &headers, body).0, 200, "{scheme}");
        assert_eq!(received.join().unwrap().len(), 1);
        assert_eq!(post(&gateway.addr, &headers, body).0, 401, "{scheme}");
        let log = gateway.stop(&env);
        let note = log.lines().next().unwrap_or_default();
        assert_eq!(
            note,
            format!(
                "warning: scheme {scheme} signs no time or id: each delivery is remembered by its \
                 body for 120 s (twice --tolerance) and refused as a replay within that time; a \
                 copy sent later is forwarded again"
            ),
            "{log}"
        );
        assert!(log.contains("rejected.replay=1"), "{log}");
    }
}

#[test]
fn turning_replay_protection_off_is_announced() {
    let env = env_with_secret();
    let (upstream_addr, _received) = upstream(&[]);
    let gateway = Serving::start(&env, &upstream_addr, &["--no-replay"]);
    let log = gateway.stop(&env);
    assert_eq!(
        log.lines().next().unwrap_or_default(),
        "warning: replay protection is off (--no-replay): every copy of a delivery is forwarded",
        "{log}"
    );
}

#[test]
fn limit_flags_reach_the_gateway() {
    let env = TestEnv::new();
    env.set_var("SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); // hogguard:allow (public example)
    for (flag, setting) in [
        ("--max-requests", "max_concurrent_requests"),
        ("--max-connections", "max_connections"),
        ("--replay-capacity", "replay_capacity"),
    ] {
        let refused = env
            .hogguard([
                "webhook",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--forward",
                "http://127.0.0.1:9",
                "--secret-env",
                "SECRET",
                flag,
                "0",
            ])
            .output();
        refused.assert_code(2);
        assert_eq!(
            refused.stderr,
            format!("error: {setting} must be at least 1\n"),
            "{flag}"
        );
    }
}

#[test]
fn an_upstream_url_with_credentials_is_refused_without_echoing_it() {
    let env = env_with_secret();
    let password = "upstream-password-for-this-test";
    env.seed(password);
    let refused = env
        .hogguard([
            "webhook",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            &format!("http://app:{password}@127.0.0.1:9"),
            "--secret-env",
            "SECRET",
        ])
        .output();
    insta::assert_snapshot!(refused.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: --forward is not a usable upstream URL: the upstream URL must not contain credentials
    ");
}

#[test]
fn an_unusable_secret_is_named_by_its_variable() {
    let env = env_with_secret();
    env.set_var("BROKEN", "whsec_ not base64");
    let refused = env
        .hogguard([
            "webhook",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            "http://127.0.0.1:9",
            "--secret-env",
            "SECRET,BROKEN",
        ])
        .output();
    insta::assert_snapshot!(refused.snapshot(), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: the secret in BROKEN is not usable: webhook secret is not base64 after its optional `whsec_` prefix
    ");
}
