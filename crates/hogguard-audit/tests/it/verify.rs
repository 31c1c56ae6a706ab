//! Tamper detection: every single-byte change, deleted, reordered or duplicated line, and
//! rewritten chain that `verify` must catch.

use std::path::Path;
use std::sync::OnceLock;

use hogguard_audit::{AuditLog, CheckpointKey, CheckpointMismatch, ProblemKind, Report, verify};
use proptest::prelude::*;

use crate::common::{input, options, temp_log, write_log};

/// A closed log of 5 entries (its checkpoint names the last), as (log bytes, checkpoint bytes).
fn pristine() -> &'static (Vec<u8>, Vec<u8>) {
    static PRISTINE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    PRISTINE.get_or_init(|| {
        let (dir, path) = temp_log();
        write_log(&path, 5, &options());
        let checkpoint = std::fs::read(dir.path().join("audit.jsonl.checkpoint")).unwrap();
        (std::fs::read(&path).unwrap(), checkpoint)
    })
}

/// Verifies `log` beside the pristine checkpoint.
fn verify_bytes(log: &[u8]) -> Report {
    let (dir, path) = temp_log();
    std::fs::write(&path, log).unwrap();
    std::fs::write(dir.path().join("audit.jsonl.checkpoint"), &pristine().1).unwrap();
    verify(&path, None).unwrap()
}

fn lines() -> Vec<Vec<u8>> {
    pristine()
        .0
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn the_pristine_log_verifies() {
    let report = verify_bytes(&pristine().0);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, 5);
    assert_eq!(report.head.unwrap().seq, 5);
    let checkpoint = report.checkpoint.unwrap();
    assert_eq!(
        (checkpoint.seq, checkpoint.keyed, checkpoint.mac_verified),
        (5, false, false)
    );
}

#[test]
fn every_kind_of_problem_is_named() {
    let lines = lines();
    let join = |order: &[usize]| {
        order
            .iter()
            .flat_map(|&i| lines[i].clone())
            .collect::<Vec<u8>>()
    };
    let kind = |log: Vec<u8>| {
        let problem = verify_bytes(&log).problem.expect("a problem");
        (problem.seq, problem.kind)
    };
    assert_eq!(
        kind(join(&[0, 1, 3, 4])),
        (3, ProblemKind::Gap { found: 4 })
    );
    assert_eq!(
        kind(join(&[0, 2, 1, 3, 4])),
        (2, ProblemKind::Reordered { found: 3 })
    );
    assert_eq!(
        kind(join(&[0, 1, 1, 2, 3, 4])),
        (3, ProblemKind::Duplicate { found: 2 })
    );
    assert_eq!(
        kind(join(&[0, 1, 2, 3])),
        (
            5,
            ProblemKind::CheckpointMismatch(CheckpointMismatch::AheadOfLog)
        )
    );
    let mut torn = join(&[0, 1, 2, 3, 4]);
    torn.pop();
    assert_eq!(kind(torn), (5, ProblemKind::MissingNewline));
    let mut edited = join(&[0, 1, 2, 3, 4]);
    let at = edited.iter().position(|&b| b == b'r').unwrap();
    edited[at] = b'R';
    assert_eq!(kind(edited), (1, ProblemKind::HashMismatch));
    let mut junk = join(&[0, 1]);
    junk.extend_from_slice(b"not json\n");
    assert!(matches!(kind(junk), (3, ProblemKind::Malformed { .. })));
}

#[test]
fn lines_from_another_log_are_foreign() {
    let (_dir, other) = temp_log();
    write_log(&other, 2, &options());
    let foreign = std::fs::read(&other).unwrap();
    let mut spliced = lines()[0].clone();
    spliced.extend(foreign.split_inclusive(|&b| b == b'\n').nth(1).unwrap());
    let problem = verify_bytes(&spliced).problem.unwrap();
    assert_eq!((problem.seq, problem.kind), (2, ProblemKind::ForeignEntry));
}

#[test]
fn a_rewritten_chain_is_caught_only_with_the_key() {
    let key = CheckpointKey::new("checkpoint key from the secret store");
    let (dir, path) = temp_log();
    write_log(&path, 3, &options().checkpoint_key(key.clone()));
    assert!(
        verify(&path, Some(&key))
            .unwrap()
            .checkpoint
            .unwrap()
            .mac_verified
    );

    // The attacker writes a whole new, self-consistent log and an unkeyed checkpoint.
    let (forged_dir, forged) = temp_log();
    write_log(&forged, 3, &options());
    std::fs::copy(&forged, &path).unwrap();
    let checkpoint = |dir: &Path| dir.join("audit.jsonl.checkpoint");
    std::fs::copy(checkpoint(forged_dir.path()), checkpoint(dir.path())).unwrap();

    assert!(
        verify(&path, None).unwrap().is_ok(),
        "an unkeyed check cannot see this"
    );
    let problem = verify(&path, Some(&key)).unwrap().problem.unwrap();
    assert_eq!(
        problem.kind,
        ProblemKind::CheckpointMismatch(CheckpointMismatch::NotKeyed)
    );
    let error = AuditLog::open(&path, &options().checkpoint_key(key.clone())).unwrap_err();
    assert_eq!(error.problem().unwrap().kind, problem.kind);

    // Keyed with a key of the attacker's: the MAC does not verify.
    let (forged_dir, forged) = temp_log();
    write_log(
        &forged,
        3,
        &options().checkpoint_key(CheckpointKey::new("guess")),
    );
    std::fs::copy(&forged, &path).unwrap();
    std::fs::copy(checkpoint(forged_dir.path()), checkpoint(dir.path())).unwrap();
    let problem = verify(&path, Some(&key)).unwrap().problem.unwrap();
    assert_eq!(
        problem.kind,
        ProblemKind::CheckpointMismatch(CheckpointMismatch::Mac)
    );
}

#[test]
fn a_broken_checkpoint_is_reported() {
    let (dir, path) = temp_log();
    write_log(&path, 2, &options());
    let checkpoint = dir.path().join("audit.jsonl.checkpoint");
    std::fs::write(&checkpoint, "{").unwrap();
    assert!(matches!(
        verify(&path, None).unwrap().problem.unwrap().kind,
        ProblemKind::CheckpointMalformed { .. }
    ));
    std::fs::remove_file(&checkpoint).unwrap();
    assert_eq!(
        verify(&path, None).unwrap().problem.unwrap().kind,
        ProblemKind::CheckpointMissing
    );
}

#[test]
fn an_empty_new_log_verifies() {
    let (_dir, path) = temp_log();
    AuditLog::open(&path, &options()).unwrap().close().unwrap();
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, 0);
    let log = AuditLog::open(&path, &options()).unwrap();
    assert_eq!(log.append(input(1)).unwrap().seq, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Fuzz-style: whatever the files hold, verifying, querying and opening return a
    /// verdict or an error, never a panic; and opening never accepts a line that fails.
    #[test]
    fn arbitrary_files_never_panic(
        log in proptest::collection::vec(any::<u8>(), 0..600),
        keep_lines in 0usize..6,
        checkpoint in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        use_pristine_checkpoint in any::<bool>(),
    ) {
        let (dir, path) = temp_log();
        // Valid lines followed by junk reach the deeper checks too.
        let mut bytes: Vec<u8> = lines().into_iter().take(keep_lines).flatten().collect();
        bytes.extend_from_slice(&log);
        std::fs::write(&path, &bytes).unwrap();
        let checkpoint_path = dir.path().join("audit.jsonl.checkpoint");
        if use_pristine_checkpoint {
            std::fs::write(&checkpoint_path, &pristine().1).unwrap();
        } else if let Some(checkpoint) = &checkpoint {
            std::fs::write(&checkpoint_path, checkpoint).unwrap();
        }
        let report = verify(&path, None).unwrap();
        let _ = hogguard_audit::query(&path, &hogguard_audit::Filter::default()).unwrap().count();
        if let Ok(log) = AuditLog::open(&path, &options()) {
            drop(log);
            // Whatever opening accepted (after cutting a torn tail) verifies.
            let after = verify(&path, None).unwrap();
            prop_assert!(after.is_ok(), "{report:?} then {after:?}");
        }
    }
}

/// Verifies each of `logs` beside the pristine checkpoint, in one directory.
fn verify_each(logs: impl IntoIterator<Item = Vec<u8>>) -> Vec<Report> {
    let (dir, path) = temp_log();
    std::fs::write(dir.path().join("audit.jsonl.checkpoint"), &pristine().1).unwrap();
    logs.into_iter()
        .map(|log| {
            std::fs::write(&path, log).unwrap();
            verify(&path, None).unwrap()
        })
        .collect()
}

#[test]
fn every_single_byte_change_fails_verification() {
    let pristine = &pristine().0;
    let changes: Vec<(usize, u8)> = (0..pristine.len())
        .flat_map(|position| {
            let original = pristine[position];
            // The smallest change, a line break, and a NUL byte (what a crash leaves).
            [original ^ 1, b'\n', 0]
                .into_iter()
                .filter(move |&byte| byte != original)
                .map(move |byte| (position, byte))
        })
        .collect();
    let reports = verify_each(changes.iter().map(|&(position, byte)| {
        let mut log = pristine.clone();
        log[position] = byte;
        log
    }));
    for ((position, byte), report) in changes.iter().zip(reports) {
        assert!(
            !report.is_ok(),
            "byte {position} set to {byte:#04x} went unnoticed"
        );
    }
}

/// Every arrangement of distinct lines out of `count`, of every length, in every order.
fn arrangements(count: usize) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    let mut shorter = vec![Vec::new()];
    for _ in 0..count {
        shorter = shorter
            .iter()
            .flat_map(|arrangement: &Vec<usize>| {
                (0..count)
                    .filter(|line| !arrangement.contains(line))
                    .map(move |line| [&arrangement[..], &[line]].concat())
            })
            .collect();
        all.extend(shorter.iter().cloned());
    }
    all
}

#[test]
fn every_deleted_reordered_or_duplicated_line_fails_verification() {
    let lines = lines();
    let original: Vec<usize> = (0..lines.len()).collect();
    // Lines deleted, reordered, or both.
    let mut edits: Vec<Vec<usize>> = arrangements(lines.len())
        .into_iter()
        .filter(|arrangement| *arrangement != original)
        .collect();
    // Each line repeated at each place.
    for line in 0..lines.len() {
        for at in 0..=lines.len() {
            let mut duplicated = original.clone();
            duplicated.insert(at, line);
            edits.push(duplicated);
        }
    }
    assert_eq!(edits.len(), 325 + 30);
    let reports = verify_each(
        edits
            .iter()
            .map(|edit| edit.iter().flat_map(|&i| lines[i].clone()).collect()),
    );
    for (edit, report) in edits.iter().zip(reports) {
        assert!(
            !report.is_ok(),
            "lines in the order {edit:?} went unnoticed"
        );
    }
}
