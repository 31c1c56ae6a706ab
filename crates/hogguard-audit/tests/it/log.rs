//! Opening, appending, locking, recovery and redaction.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::time::Duration;

use hogguard_audit::{
    AuditError, AuditLog, CheckpointKey, CheckpointMismatch, EntryInput, GENESIS_PREV, Outcome,
    ProblemKind, RECOVERED_ACTION, SYSTEM_USER_ID, verify,
};
use hogguard_testkit::keys::{self, Prefix};
use serde_json::json;

use crate::common::{all_entries, input, options, temp_log, write_log};

#[test]
fn appends_are_chained_numbered_from_1_and_read_back_as_written() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    let first = log.append(input(1)).unwrap();
    let second = log.append(input(2)).unwrap();
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(first.prev, GENESIS_PREV);
    assert_eq!(second.prev, first.hash);
    assert_eq!(first.log_id, log.log_id());
    assert_eq!(log.last_seq(), 2);
    log.close().unwrap();

    assert_eq!(all_entries(&path), [first.clone(), second]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(&format!(",\"hash\":\"{}\"}}", first.hash))
    );
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, 2);
}

#[test]
fn reopening_continues_the_chain_of_the_same_log() {
    let (_dir, path) = temp_log();
    let before = write_log(&path, 3, &options());
    let log = AuditLog::open(&path, &options()).unwrap();
    assert_eq!(log.log_id(), before[0].log_id);
    assert_eq!(log.last_seq(), 3);
    let next = log.append(input(4)).unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.prev, before[2].hash);
    drop(log);
    assert!(verify(&path, None).unwrap().is_ok());
}

#[test]
fn a_written_entry_is_in_the_file_before_it_is_durable_and_sync_makes_it_durable() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    let durable = log.append(input(1)).unwrap();
    let written = log.append_written(input(2)).unwrap();
    assert_eq!(
        (written.seq, written.prev.as_str()),
        (2, durable.hash.as_str())
    );
    // In the file (a crash of this process keeps it), not yet counted as durable.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with(&format!(",\"hash\":\"{}\"}}\n", written.hash)));
    assert_eq!(log.last_seq(), 1);
    log.sync().unwrap();
    assert_eq!(log.last_seq(), 2);
    // A durable append makes the written lines before it durable too.
    log.append_written(input(3)).unwrap();
    log.append(input(4)).unwrap();
    assert_eq!(log.last_seq(), 4);
    log.close().unwrap();
    assert_eq!(all_entries(&path).len(), 4);
}

#[test]
fn dropping_a_log_makes_written_entries_durable_and_checkpointed() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    let written = log.append_written(input(1)).unwrap();
    drop(log);
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.checkpoint.as_ref().map(|c| c.seq), Some(written.seq));
}

#[test]
fn concurrent_written_and_durable_appends_interleave_into_one_chain() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..6u64 {
            let log = &log;
            scope.spawn(move || {
                for n in 0..200 {
                    match thread % 3 {
                        0 => drop(log.append(input(n)).unwrap()),
                        1 => drop(log.append_written(input(n)).unwrap()),
                        _ => {
                            log.append_written(input(n)).unwrap();
                            log.sync().unwrap();
                        }
                    }
                }
            });
        }
    });
    log.sync().unwrap();
    assert_eq!(log.last_seq(), 1200);
    drop(log);
    let entries = all_entries(&path);
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=1200).collect::<Vec<_>>()
    );
    assert!(verify(&path, None).unwrap().is_ok());
}

#[test]
fn concurrent_appends_get_distinct_seqs_and_all_are_durable() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    let returned: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|thread| {
                let log = &log;
                scope.spawn(move || {
                    (0..40)
                        .map(|n| log.append(input(thread * 100 + n)).unwrap().seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    log.close().unwrap();
    let returned: BTreeSet<u64> = returned.into_iter().collect();
    assert_eq!(returned, (1..=320).collect());
    let stored: Vec<u64> = all_entries(&path).iter().map(|e| e.seq).collect();
    assert_eq!(stored, (1..=320).collect::<Vec<_>>());
    assert!(verify(&path, None).unwrap().is_ok());
}

#[test]
fn a_second_writer_waits_then_fails_with_a_typed_error() {
    let (_dir, path) = temp_log();
    let first = AuditLog::open(&path, &options()).unwrap();
    // flock locks open file descriptions, so a second open in this process competes exactly
    // as another process would (the crash tests hold the lock from a child process too).
    let started = std::time::Instant::now();
    let error =
        AuditLog::open(&path, &options().lock_timeout(Duration::from_millis(150))).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(matches!(error, AuditError::Locked { .. }), "{error:?}");
    assert!(error.is_unwritable());
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
    drop(first);
    AuditLog::open(&path, &options()).unwrap();
}

#[test]
fn a_log_that_cannot_be_created_is_unwritable() {
    let (dir, _) = temp_log();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let error = AuditLog::open(not_a_dir.join("audit.jsonl"), &options()).unwrap_err();
    assert!(matches!(error, AuditError::Unwritable { .. }), "{error:?}");
    assert!(error.is_unwritable());
}

#[test]
fn invalid_entries_are_refused_without_using_a_seq() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    let no_user = EntryInput::new("x", "", "r", Outcome::Success);
    assert!(matches!(
        log.append(no_user),
        Err(AuditError::InvalidEntry { .. })
    ));
    let no_action = EntryInput::new("", "u", "r", Outcome::Success);
    assert!(matches!(
        log.append(no_action),
        Err(AuditError::InvalidEntry { .. })
    ));
    let huge = input(1).with_metadata("blob", "x".repeat(70_000));
    let error = log.append(huge).unwrap_err();
    assert!(matches!(error, AuditError::InvalidEntry { .. }) && !error.is_unwritable());
    assert_eq!(log.append(input(1)).unwrap().seq, 1);
}

#[test]
fn every_string_is_redacted_before_it_is_written() {
    let (_dir, path) = temp_log();
    let personal = keys::current(Prefix::Personal);
    let secret = keys::current(Prefix::Secret);
    let log = AuditLog::open(&path, &options()).unwrap();
    let mut input = EntryInput::new(
        format!("paste {personal}"),
        format!("ops {secret}"),
        format!("key {personal}"),
        Outcome::Success,
    );
    input.metadata = json!({
        "key": personal,
        "nested": {"list": [1, format!("token={secret}"), {"deeper": personal}]},
        personal.clone(): "as a key",
    })
    .as_object()
    .unwrap()
    .clone();
    let entry = log.append(input).unwrap();
    log.close().unwrap();

    let written = std::fs::read_to_string(&path).unwrap();
    let returned = serde_json::to_string(&entry).unwrap();
    for text in [&written, &returned] {
        assert!(
            !text.contains(&personal) && !text.contains(&secret),
            "{text}"
        );
    }
    let mask = hogguard_secret::mask(&personal);
    assert_eq!(entry.metadata["key"], mask.as_str());
    assert_eq!(entry.metadata["nested"]["list"][2]["deeper"], mask.as_str());
    assert!(entry.metadata.contains_key(&mask));
    assert_eq!(entry.action, format!("paste {mask}"));
    assert!(verify(&path, None).unwrap().is_ok());
}

#[test]
fn a_torn_last_line_is_cut_and_the_cut_is_logged() {
    let (_dir, path) = temp_log();
    let entries = write_log(&path, 3, &options());
    let whole = std::fs::read(&path).unwrap();
    // Half of a line that was being written when the process died.
    let torn = br#"{"v":1,"log":"0123","seq":4,"timestamp":"2025-"#;
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();
    let report = verify(&path, None).unwrap();
    assert_eq!(report.problem.unwrap().kind, ProblemKind::MissingNewline);

    let log = AuditLog::open(&path, &options()).unwrap();
    assert_eq!(log.last_seq(), 4);
    log.close().unwrap();
    let after = all_entries(&path);
    assert_eq!(after[..3], entries[..]);
    let recovered = &after[3];
    assert_eq!(recovered.action, RECOVERED_ACTION);
    assert_eq!(recovered.user_id, SYSTEM_USER_ID);
    assert_eq!(recovered.metadata["cut_bytes"], torn.len());
    assert_eq!(recovered.metadata["cut_offset"], whole.len());
    let cut_sha = hex(&<sha2::Sha256 as sha2::Digest>::digest(torn));
    assert_eq!(recovered.metadata["cut_sha256"], cut_sha.as_str());
    assert!(verify(&path, None).unwrap().is_ok());
}

#[test]
fn a_last_line_of_nul_bytes_is_cut_as_torn() {
    let (_dir, path) = temp_log();
    write_log(&path, 2, &options());
    // Delayed allocation can leave a zero-filled page with the newline of a later one.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0; 300])
        .unwrap();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    let log = AuditLog::open(&path, &options()).unwrap();
    log.close().unwrap();
    let after = all_entries(&path);
    assert_eq!(after.len(), 3);
    assert_eq!(after[2].metadata["cut_bytes"], 301);
    assert!(
        after[2].metadata["reason"]
            .as_str()
            .unwrap()
            .contains("NUL")
    );
}

#[test]
fn a_complete_line_that_fails_stops_all_appends_naming_its_seq() {
    let (_dir, path) = temp_log();
    write_log(&path, 4, &options());
    // The checkpoint names seq 4; edit that line.
    let text = std::fs::read_to_string(&path).unwrap();
    let last_start = text.trim_end().rfind('\n').unwrap() + 1;
    let edited = format!(
        "{}{}",
        &text[..last_start],
        text[last_start..].replacen("user", "User", 1)
    );
    std::fs::write(&path, edited).unwrap();
    let error = AuditLog::open(&path, &options()).unwrap_err();
    let problem = error.problem().expect("corrupt");
    assert_eq!(
        (problem.seq, &problem.kind),
        (4, &ProblemKind::HashMismatch)
    );
    assert!(!error.is_unwritable());
    assert!(error.to_string().contains("seq 4"), "{error}");
}

#[test]
fn lines_after_a_lagging_checkpoint_are_checked_on_open() {
    let (dir, path) = temp_log();
    write_log(&path, 1, &options());
    let checkpoint = dir.path().join("audit.jsonl.checkpoint");
    let lagging = std::fs::read(&checkpoint).unwrap();
    let log = AuditLog::open(&path, &options()).unwrap();
    for n in 2..=5 {
        log.append(input(n)).unwrap();
    }
    log.close().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // As after a crash before the checkpoint caught up.
    std::fs::write(&checkpoint, &lagging).unwrap();

    let problem_on_open = || {
        AuditLog::open(&path, &options())
            .unwrap_err()
            .problem()
            .expect("corrupt")
            .clone()
    };
    std::fs::write(&path, text.replacen("resource 3", "resource X", 1)).unwrap();
    let problem = problem_on_open();
    assert_eq!((problem.seq, problem.kind), (3, ProblemKind::HashMismatch));

    let lines: Vec<&str> = text.lines().collect();
    let without_3 = [lines[0], lines[1], lines[3], lines[4]]
        .map(|l| format!("{l}\n"))
        .concat();
    std::fs::write(&path, without_3).unwrap();
    let problem = problem_on_open();
    assert_eq!(
        (problem.seq, problem.kind),
        (3, ProblemKind::Gap { found: 4 })
    );

    let swapped = [lines[0], lines[1], lines[3], lines[2], lines[4]]
        .map(|l| format!("{l}\n"))
        .concat();
    std::fs::write(&path, swapped).unwrap();
    let problem = problem_on_open();
    assert_eq!(
        (problem.seq, problem.kind),
        (3, ProblemKind::Reordered { found: 4 })
    );

    std::fs::write(&path, &text).unwrap();
    AuditLog::open(&path, &options()).unwrap();
}

#[test]
fn a_deleted_log_or_checkpoint_is_refused() {
    let (dir, path) = temp_log();
    write_log(&path, 2, &options());
    let checkpoint = dir.path().join("audit.jsonl.checkpoint");
    let saved = std::fs::read(&checkpoint).unwrap();

    std::fs::rename(&path, dir.path().join("moved")).unwrap();
    let error = AuditLog::open(&path, &options()).unwrap_err();
    assert_eq!(
        error.problem().unwrap().kind,
        ProblemKind::CheckpointMismatch(CheckpointMismatch::AheadOfLog)
    );
    std::fs::rename(dir.path().join("moved"), &path).unwrap();

    std::fs::remove_file(&checkpoint).unwrap();
    let error = AuditLog::open(&path, &options()).unwrap_err();
    assert_eq!(
        error.problem().unwrap().kind,
        ProblemKind::CheckpointMissing
    );
    std::fs::write(&checkpoint, saved).unwrap();
    AuditLog::open(&path, &options()).unwrap();
}

#[test]
fn a_missing_or_dropped_key_is_refused() {
    let (_dir, path) = temp_log();
    let unset = AuditLog::open(
        &path,
        &options().checkpoint_key_env("HOGGUARD_AUDIT_TEST_UNSET_KEY"),
    );
    let error = unset.unwrap_err();
    assert!(matches!(error, AuditError::CheckpointKeyMissing { .. }) && error.is_unwritable());
    assert!(
        error.to_string().contains("HOGGUARD_AUDIT_TEST_UNSET_KEY"),
        "{error}"
    );

    let keyed = options().checkpoint_key(CheckpointKey::new("k1"));
    write_log(&path, 2, &keyed);
    let error = AuditLog::open(&path, &options()).unwrap_err();
    assert!(
        matches!(error, AuditError::CheckpointKeyMissing { .. }),
        "{error:?}"
    );
    let wrong =
        AuditLog::open(&path, &options().checkpoint_key(CheckpointKey::new("k2"))).unwrap_err();
    assert_eq!(
        wrong.problem().unwrap().kind,
        ProblemKind::CheckpointMismatch(CheckpointMismatch::Mac)
    );
    AuditLog::open(&path, &keyed).unwrap().close().unwrap();
    assert!(
        verify(&path, Some(&CheckpointKey::new("k1")))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_bad_line_before_the_checkpoint_stops_appends_naming_its_seq() {
    let (_dir, path) = temp_log();
    write_log(&path, 3, &options());
    // The checkpoint names seq 3; one byte of seq 1 changes.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("resource 1", "resource 7", 1)).unwrap();
    let error = AuditLog::open(&path, &options()).unwrap_err();
    let problem = error.problem().expect("corrupt");
    assert_eq!(
        (problem.seq, &problem.kind),
        (1, &ProblemKind::HashMismatch)
    );
    assert!(error.to_string().contains("seq 1"), "{error}");
}

#[test]
fn a_forged_log_under_an_unkeyed_empty_checkpoint_is_refused_with_the_key() {
    let key = CheckpointKey::new("checkpoint key from the secret store");
    let keyed = options().checkpoint_key(key.clone());
    let (dir, path) = temp_log();
    write_log(&path, 3, &keyed);

    // The attacker rewrites the whole log and puts an unkeyed seq-0 checkpoint of the forged
    // log beside it: the next keyed append would otherwise MAC the forgery.
    let (_forged_dir, forged) = temp_log();
    let forged_entries = write_log(&forged, 3, &options());
    std::fs::copy(&forged, &path).unwrap();
    let checkpoint = dir.path().join("audit.jsonl.checkpoint");
    let unkeyed_start = json!({
        "v": 1,
        "log": forged_entries[0].log_id,
        "seq": 0,
        "hash": GENESIS_PREV,
        "offset": 0,
        "mac": null,
    });
    std::fs::write(&checkpoint, format!("{unkeyed_start}\n")).unwrap();

    let not_keyed = ProblemKind::CheckpointMismatch(CheckpointMismatch::NotKeyed);
    let error = AuditLog::open(&path, &keyed).unwrap_err();
    assert_eq!(error.problem().unwrap().kind, not_keyed, "{error:?}");
    let report = verify(&path, Some(&key)).unwrap();
    assert_eq!(report.problem.unwrap().kind, not_keyed);
    // Nothing was written over the forgery.
    assert_eq!(
        std::fs::read_to_string(&checkpoint).unwrap(),
        format!("{unkeyed_start}\n")
    );

    // A log never written to may still gain a key.
    let (_dir, fresh) = temp_log();
    AuditLog::open(&fresh, &options()).unwrap().close().unwrap();
    assert!(verify(&fresh, Some(&key)).unwrap().is_ok());
    let log = AuditLog::open(&fresh, &keyed).unwrap();
    log.append(input(1)).unwrap();
    log.close().unwrap();
    let report = verify(&fresh, Some(&key)).unwrap();
    assert!(report.is_ok() && report.checkpoint.unwrap().mac_verified);
}

/// The states a crash while recovery writes its entry over a torn tail can leave, each of
/// which the next open must record as a cut right after the last good entry.
#[test]
fn a_crash_anywhere_in_recovery_still_gets_the_cut_logged() {
    let (dir, path) = temp_log();
    write_log(&path, 3, &options());
    let good = std::fs::read(&path).unwrap();
    let checkpoint = dir.path().join("audit.jsonl.checkpoint");
    let good_checkpoint = std::fs::read(&checkpoint).unwrap();
    // A torn group commit, longer than the entry recording it; and a line whose first page
    // never reached the disk, then the start of another.
    let torn_batch = br#"{"v":1,"log":"0123","seq":4,"timestamp":"2025-"#.repeat(40);
    let mut nul_line = vec![0; 700];
    nul_line.extend_from_slice(br#"","result":"success","metadata":{},"hash":"00"}"#);
    nul_line.push(b'\n');
    nul_line.extend_from_slice(br#"{"v":1,"log":"#);

    for torn in [torn_batch, nul_line] {
        let with_tail = |tail: &[u8]| [&good[..], tail].concat();
        std::fs::write(&path, with_tail(&torn)).unwrap();
        std::fs::write(&checkpoint, &good_checkpoint).unwrap();
        AuditLog::open(&path, &options()).unwrap().close().unwrap();
        // What recovery wrote in place of the torn bytes.
        let line = std::fs::read(&path).unwrap()[good.len()..].to_vec();

        let mut states = vec![with_tail(&torn)];
        // A newline in the torn bytes is cut first.
        let unterminated = match torn.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                states.push(with_tail(&torn[..newline]));
                &torn[..newline]
            }
            None => &torn[..],
        };
        // The line written in part (a write cut short), then whole, over the torn bytes.
        for written in 0..=line.len() {
            let mut tail = line[..written].to_vec();
            tail.extend_from_slice(unterminated.get(written..).unwrap_or_default());
            states.push(with_tail(&tail));
        }
        // The file cut to the end of the line.
        states.push(with_tail(&line));

        for state in states {
            std::fs::write(&path, &state).unwrap();
            std::fs::write(&checkpoint, &good_checkpoint).unwrap();
            AuditLog::open(&path, &options()).unwrap().close().unwrap();
            let entries = all_entries(&path);
            let recorded = &entries[3];
            assert_eq!(recorded.action, RECOVERED_ACTION, "{entries:?}");
            assert_eq!(recorded.metadata["cut_offset"], good.len());
            assert!(verify(&path, None).unwrap().is_ok());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
