//! `hogguard webhook serve` end to end: a real upstream on loopback, signed and forged
//! deliveries, SIGTERM, and the summary in the audit log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use crate::support::{self, run};

/// Sends one HTTP/1.1 request and returns the status line and the body.
fn post(addr: &str, headers: &[String], body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
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
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

/// An upstream that answers one request with `ok` and hands over what it received.
fn upstream() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
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
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        format!("{head}{}", String::from_utf8(body).unwrap())
    });
    (addr, handle)
}

#[test]
fn forwards_verified_deliveries_and_logs_a_summary_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[audit]\npath = 'audit.jsonl'\n",
    )
    .unwrap();
    let secret = run(
        support::hogguard(dir.path()).args(["webhook", "secret"]),
        b"",
    )
    .stdout;
    let secret = secret.trim();
    let (upstream_addr, received) = upstream();

    let mut gateway = support::hogguard(dir.path())
        .args([
            "webhook",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            &format!("http://{upstream_addr}"),
            "--secret-env",
            "SECRET",
        ])
        .env("SECRET", secret)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(gateway.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();

    let body = r#"{"event":"$pageview"}"#;
    let signed = run(
        support::hogguard(dir.path())
            .args(["webhook", "sign", "--secret-env", "SECRET"])
            .env("SECRET", secret),
        body.as_bytes(),
    );
    let headers: Vec<String> = signed.stdout.lines().map(str::to_owned).collect();
    assert_eq!(
        post(&addr, &headers, body),
        ("HTTP/1.1 200 OK".to_owned(), "ok".to_owned())
    );
    let seen = received.join().unwrap();
    assert!(
        seen.starts_with("POST /hooks/posthog?x=1 HTTP/1.1\r\n"),
        "{seen}"
    );
    assert!(seen.ends_with(body));

    let forged: Vec<String> = headers.iter().map(|h| h.replace("v1,", "v1,A")).collect();
    let (status, answer) = post(&addr, &forged, body);
    assert_eq!(
        (status.as_str(), answer.as_str()),
        (
            "HTTP/1.1 401 Unauthorized",
            r#"{"error":"invalid signature"}"#
        )
    );

    let killed = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = gateway.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    log.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains(secret) && !first.contains(secret));

    let entries = run(
        support::hogguard(dir.path()).args(["audit", "show", "--format", "json"]),
        b"",
    );
    let entry: serde_json::Value = serde_json::from_str(&entries.stdout).unwrap();
    assert_eq!(entry["action"], "webhook.gateway_stopped");
    assert_eq!(entry["metadata"]["forwarded"], 1);
    assert_eq!(entry["metadata"]["rejected"], 1);
}

#[test]
fn limit_flags_reach_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, setting) in [
        ("--max-requests", "max_concurrent_requests"),
        ("--max-connections", "max_connections"),
        ("--replay-capacity", "replay_capacity"),
    ] {
        let refused = run(
            support::hogguard(dir.path())
                .args([
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
                .env("SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), // hogguard:allow (public example)
            b"",
        );
        assert_eq!(refused.code, 2, "{flag}: {}", refused.stderr);
        assert!(
            refused
                .stderr
                .contains(&format!("{setting} must be at least 1")),
            "{flag}: {}",
            refused.stderr
        );
    }
}
