//! Kill -9 during appends: every acknowledged entry survives, and recovery leaves a chain
//! that verifies.
//!
//! The writer is this test binary run again as a child with [`CHILD_LOG_ENV`] set: it runs
//! only [`child_writer`], which appends from several threads forever and prints
//! `ack <seq> <hash>` (flushed) after each `append` or `append_written` returns. The parent
//! synchronises on those lines only.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hogguard_audit::{AuditError, AuditLog, RECOVERED_ACTION, verify};

use crate::common::{all_entries, input, options, temp_log, write_log};

/// Set (to the log's path) in the child writer's environment.
const CHILD_LOG_ENV: &str = "HOGGUARD_AUDIT_CRASH_CHILD_LOG";

/// Set (to the log's path) in the environment of a child that only opens the log, and
/// expects that to fail because it may not write.
const CHILD_OPEN_ENV: &str = "HOGGUARD_AUDIT_CRASH_CHILD_OPEN";

/// Appending threads in the child, so kills land in the middle of group commits too.
const CHILD_THREADS: u64 = 4;

/// The child writer; does nothing in a normal test run.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_LOG_ENV) else {
        return;
    };
    let log = AuditLog::open(&path, &options().lock_timeout(Duration::from_secs(10))).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..CHILD_THREADS {
            let log = &log;
            scope.spawn(move || {
                for n in 0.. {
                    // Some entries span pages, so a kill can tear a multi-page write.
                    let padding = if (n + thread) % 5 == 0 { 6000 } else { 10 };
                    let input = input(n).with_metadata("padding", "p".repeat(padding));
                    // Odd threads acknowledge once written, before the fsync (as the proxy
                    // does): the kernel keeps those lines when the process dies.
                    let entry = if thread % 2 == 1 {
                        log.append_written(input).unwrap()
                    } else {
                        log.append(input).unwrap()
                    };
                    // `println!` locks stdout and flushes at the newline.
                    println!("ack {} {}", entry.seq, entry.hash);
                }
            });
        }
    });
}

/// Arguments that make this test binary run only `test`, printing what it prints.
fn only(test: &str) -> [&str; 4] {
    [test, "--exact", "--nocapture", "--test-threads=1"]
}

fn spawn_writer(path: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(only("crash::child_writer"))
        .env(CHILD_LOG_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the child's acknowledgements, (seq, hash), until `count` of them.
fn read_acks(child: &mut Child, count: usize) -> Vec<(u64, String)> {
    let stdout = child.stdout.as_mut().unwrap();
    let mut acks = Vec::with_capacity(count);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(ack) = line.strip_prefix("ack ") {
            let (seq, hash) = ack.split_once(' ').unwrap();
            acks.push((seq.parse().unwrap(), hash.to_owned()));
            if acks.len() == count {
                break;
            }
        }
    }
    assert_eq!(acks.len(), count, "the writer stopped early");
    acks
}

/// xorshift64*, seeded from the clock; the seed is printed so a failure can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

#[test]
fn acknowledged_entries_survive_kill_9_and_the_chain_verifies() {
    const ITERATIONS: usize = 100;
    let seed = std::env::var("HOGGUARD_AUDIT_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("HOGGUARD_AUDIT_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let (_dir, path) = temp_log();
    // seq -> hash of every entry an append returned.
    let mut acknowledged = BTreeMap::new();
    let mut recoveries = 0;
    for iteration in 0..ITERATIONS {
        let kill_after = 1 + random.next(30) as usize;
        let mut child = spawn_writer(&path);
        let acks = read_acks(&mut child, kill_after);
        // `Child::kill` is SIGKILL on Unix: no destructor, no checkpoint, no flush.
        child.kill().unwrap();
        child.wait().unwrap();
        for (seq, hash) in acks {
            // A seq acknowledged twice was given out again: the first entry was lost.
            if let Some(earlier) = acknowledged.insert(seq, hash.clone()) {
                assert_eq!(
                    earlier, hash,
                    "iteration {iteration}, seed {seed}: seq {seq}"
                );
            }
        }

        let log = AuditLog::open(&path, &options())
            .unwrap_or_else(|error| panic!("iteration {iteration}, seed {seed}: {error}"));
        log.close().unwrap();
        let report = verify(&path, None).unwrap();
        assert!(
            report.is_ok(),
            "iteration {iteration}, seed {seed}: {report:?}"
        );
        let entries = all_entries(&path);
        recoveries = entries
            .iter()
            .filter(|e| e.action == RECOVERED_ACTION)
            .count();
        let present: BTreeMap<u64, &str> =
            entries.iter().map(|e| (e.seq, e.hash.as_str())).collect();
        // An entry is kept only if the line at its seq is the very entry acknowledged, not
        // another (a recovery record, a later append) that took its place.
        let lost: Vec<_> = acknowledged
            .iter()
            .filter(|&(seq, hash)| present.get(seq) != Some(&hash.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "iteration {iteration}, seed {seed}: lost {lost:?}"
        );
    }
    println!(
        "{ITERATIONS} kills, {} acknowledged entries kept, {recoveries} torn tails cut",
        acknowledged.len()
    );
}

#[test]
fn another_process_holding_the_log_makes_open_fail_after_the_wait() {
    let (_dir, path) = temp_log();
    let mut child = spawn_writer(&path);
    read_acks(&mut child, 1);
    let error =
        AuditLog::open(&path, &options().lock_timeout(Duration::from_millis(200))).unwrap_err();
    assert!(matches!(error, AuditError::Locked { .. }), "{error:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The operating system released the dead writer's lock.
    AuditLog::open(&path, &options()).unwrap();
}

/// The child of [`a_recovery_that_cannot_write_leaves_the_cut_to_the_next_open`].
#[test]
fn child_opener() {
    let Some(path) = std::env::var_os(CHILD_OPEN_ENV) else {
        return;
    };
    let error = AuditLog::open(&path, &options()).unwrap_err();
    assert!(error.is_unwritable(), "{error:?}");
}

/// Recovery that fails after deciding to cut (here: the file may not grow) must leave the
/// torn tail for the next open to cut and log, as a crash at that point would.
#[test]
fn a_recovery_that_cannot_write_leaves_the_cut_to_the_next_open() {
    let (_dir, path) = temp_log();
    write_log(&path, 6, &options());
    let good_len = std::fs::metadata(&path).unwrap().len();
    assert!(good_len > 1024);
    let torn = br#"{"v":1,"log":"0123","seq":7,"timestamp":"2025-"#;
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();

    // No file may grow past one block (512 or 1024 bytes, depending on the shell), so the
    // entry recording the cut cannot be written; SIGXFSZ is ignored, so that write fails
    // with EFBIG instead of killing the child.
    // The child's output goes to pipes: the size limit would also stop its writes to a
    // standard output redirected to a file, as CI logs are.
    let child = Command::new("sh")
        .args(["-c", r#"trap '' XFSZ; ulimit -f 1 && exec "$0" "$@""#])
        .arg(std::env::current_exe().unwrap())
        .args(only("crash::child_opener"))
        .env(CHILD_OPEN_ENV, &path)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}: {}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );

    AuditLog::open(&path, &options()).unwrap().close().unwrap();
    let entries = all_entries(&path);
    assert_eq!(entries.len(), 7, "{entries:?}");
    let recorded = &entries[6];
    assert_eq!(recorded.action, RECOVERED_ACTION);
    assert_eq!(recorded.metadata["cut_offset"], good_len);
    assert_eq!(recorded.metadata["cut_bytes"], torn.len());
}
