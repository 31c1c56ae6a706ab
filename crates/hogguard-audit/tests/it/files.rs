//! What the log keeps on disk: private whatever the umask, and only regular files read, each
//! line of them bounded. The checks that could hang or exhaust memory on the unfixed code run
//! in a child process (this test binary run again) under a memory limit and a time limit.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hogguard_audit::{AuditError, AuditLog, Filter, ShipError, ShipOptions, query, ship, verify};
use hogguard_posthog::{CaptureClient, ClientConfig, Hosts, RetryPolicy};
use hogguard_secret::Secret;
use hogguard_testkit::child::{self, ChildTest};
use hogguard_testkit::errors::{assert_no_repeated_segment, chain};
use hogguard_testkit::posthog::FakeHog;

use crate::common::{RecordingSleeper, all_entries, input, options, scanner, write_log};

fn client(base_url: &str) -> CaptureClient {
    CaptureClient::new(
        &Hosts::new(base_url).unwrap(),
        &ClientConfig::default().retry(RetryPolicy::none()),
        Secret::new("phc_AuditProjectToken"),
    )
    .unwrap()
}

/// The messages of `error`'s chain in one line.
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    chain(error).join(": ")
}

/// Issue 11 point 16: `[audit] path = "/dev/zero"` made hogguard read until it was killed,
/// and a FIFO made it wait forever. Opening, verifying, querying and shipping a log (or a
/// checkpoint) that is not a regular file is refused without reading it.
#[test]
fn logs_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB of address space and two minutes: the unfixed code runs into either.
    ChildTest::new("files::non_regular_logs_in_child")
        .under("ulimit -v 2097152")
        .wrapped_in("timeout 120")
        .dir(dir.path())
        .run();
}

/// Runs only as the child of [`logs_that_are_not_regular_files_are_refused`].
#[test]
fn non_regular_logs_in_child() {
    let Some(dir) = child::dir() else {
        return;
    };
    let dir = dir.as_path();
    let zero = dir.join("zero.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.join("fifo.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // A regular log whose checkpoint is a device.
    let log = dir.join("log.jsonl");
    write_log(&log, 2, &options());
    let checkpoint = dir.join("log.jsonl.checkpoint");
    std::fs::remove_file(&checkpoint).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &checkpoint).unwrap();

    let refused = |error: &(dyn std::error::Error + 'static)| {
        assert_no_repeated_segment(error);
        let text = chain_text(error);
        assert!(text.contains("is not a regular file"), "{text}");
    };
    for path in [&zero, &fifo, &log] {
        let error = AuditLog::open(path, &options()).unwrap_err();
        // A log that is no file cannot be written (`[audit] required` fails closed on it).
        assert!(error.is_unwritable() || path == &log, "{error:?}");
        refused(&error);
        refused(&verify(path, None).unwrap_err());
        let ship_options = ShipOptions::default().scanner(scanner());
        match ship(path, &client("http://127.0.0.1:1"), &ship_options).unwrap_err() {
            ShipError::Audit(error) => refused(&error),
            other => panic!("{other:?}"),
        }
    }
    for path in [&zero, &fifo] {
        let error = match query(path, &Filter::default()) {
            Err(error) => error,
            Ok(mut entries) => entries.next().unwrap().unwrap_err(),
        };
        refused(&error);
    }
    // Nothing was made beside the device and the FIFO (beside `/dev/zero`, were it named
    // directly); the regular log has its lock files.
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "fifo.jsonl",
            "log.jsonl",
            "log.jsonl.checkpoint",
            "log.jsonl.lock",
            "log.jsonl.outbox.lock",
            "zero.jsonl"
        ]
    );
}

/// A line longer than any entry can be is not read whole: `query` reports it as damage
/// after the entries before it, instead of taking it for an append in progress.
#[test]
fn a_line_longer_than_any_entry_is_reported_not_read_whole() {
    let (_dir, path) = crate::common::temp_log();
    let entries = write_log(&path, 2, &options());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, &vec![b'x'; 4 << 20]).unwrap();
    drop(file);
    let results: Vec<_> = query(&path, &Filter::default()).unwrap().collect();
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0].as_ref().unwrap(), &entries[0]);
    let Err(AuditError::Corrupt { problem, .. }) = &results[2] else {
        panic!("{:?}", results[2]);
    };
    assert_eq!(problem.seq, 3);
    assert_eq!(problem.line, Some(3));
}

/// Issue 11 point 15: the log's directory, the log, its lock, checkpoint, outbox and outbox
/// lock are private whatever the umask.
#[test]
fn the_logs_files_are_private_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    ChildTest::new("files::write_a_log_under_umask_000_in_child")
        .under("umask 000")
        .dir(dir.path())
        .run();
    let state = dir.path().join("state/audit");
    let mode = |name: &str| {
        std::fs::metadata(state.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(
        std::fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    for name in [
        "audit.jsonl",
        "audit.jsonl.lock",
        "audit.jsonl.checkpoint",
        "audit.jsonl.outbox",
        "audit.jsonl.outbox.lock",
    ] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
}

/// Runs only as the child of [`the_logs_files_are_private_under_umask_000`].
#[test]
fn write_a_log_under_umask_000_in_child() {
    let Some(dir) = child::dir() else {
        return;
    };
    let path = dir.join("state/audit/audit.jsonl");
    let log = AuditLog::open(&path, &options()).unwrap();
    log.append(input(1)).unwrap();
    log.close().unwrap();
    let hog = FakeHog::start();
    let sleeper = Arc::new(RecordingSleeper::default());
    let report = ship(
        &path,
        &client(hog.base_url()),
        &ShipOptions::default()
            .scanner(scanner())
            .sleeper(sleeper as Arc<dyn hogguard_posthog::Sleeper>)
            .lock_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    assert_eq!(report.shipped, 1);
    assert_eq!(all_entries(&path).len(), 1);
}
