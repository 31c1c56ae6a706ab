//! Filtering entries, and stopping at a broken chain.

use hogguard_audit::{AuditError, Filter, Outcome, ProblemKind, Timestamp, query};

use crate::common::{options, temp_log, write_log};

fn seqs(path: &std::path::Path, filter: Filter) -> Vec<u64> {
    query(path, &filter)
        .unwrap()
        .map(|entry| entry.unwrap().seq)
        .collect()
}

#[test]
fn filters_select_by_every_field() {
    let (_dir, path) = temp_log();
    // Entry n: action `test.action{n % 2}`, user `user{n % 3}`, failure when n % 3 == 0.
    let entries = write_log(&path, 9, &options());
    assert_eq!(seqs(&path, Filter::default()), (1..=9).collect::<Vec<_>>());
    let by_action = Filter {
        action: Some("test.action0".into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&path, by_action), [2, 4, 6, 8]);
    let by_prefix = Filter {
        action: Some("test.*".into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&path, by_prefix).len(), 9);
    let by_user = Filter {
        user: Some("user1".into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&path, by_user), [1, 4, 7]);
    let failures = Filter {
        result: Some(Outcome::Failure),
        ..Filter::default()
    };
    assert_eq!(seqs(&path, failures), [3, 6, 9]);
    let combined = Filter {
        user: Some("user0".into()),
        action: Some("test.action0".into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&path, combined), [6]);

    // Times: `since` is inclusive, `until` exclusive.
    let at = |seq: usize| entries[seq - 1].timestamp;
    let window = Filter {
        since: Some(at(3)),
        until: Some(Timestamp::from_unix_millis(at(9).unix_millis() + 1)),
        ..Filter::default()
    };
    let selected: Vec<_> = query(&path, &window).unwrap().map(Result::unwrap).collect();
    assert!(
        selected
            .iter()
            .all(|e| at(3) <= e.timestamp && e.timestamp <= at(9))
    );
    let selected: Vec<u64> = selected.iter().map(|e| e.seq).collect();
    assert!((3..=9).all(|seq| selected.contains(&seq)), "{selected:?}");
    assert!(
        seqs(
            &path,
            Filter {
                until: Some(at(1)),
                ..Filter::default()
            }
        )
        .is_empty()
    );
}

#[test]
fn reading_stops_with_an_error_at_the_first_broken_line() {
    let (_dir, path) = temp_log();
    write_log(&path, 4, &options());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("resource 3", "resource X", 1)).unwrap();
    let results: Vec<_> = query(&path, &Filter::default()).unwrap().collect();
    assert_eq!(results.len(), 3);
    assert!(results[..2].iter().all(Result::is_ok));
    let Err(AuditError::Corrupt { problem, .. }) = &results[2] else {
        panic!("{:?}", results[2]);
    };
    assert_eq!(
        (problem.seq, problem.line, &problem.kind),
        (3, Some(3), &ProblemKind::HashMismatch)
    );
}

#[test]
fn a_line_still_being_written_is_not_read() {
    let (_dir, path) = temp_log();
    write_log(&path, 2, &options());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"v":1,"seq":3"#);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(seqs(&path, Filter::default()), [1, 2]);
}

#[test]
fn a_missing_log_is_unreadable() {
    let (_dir, path) = temp_log();
    assert!(matches!(
        query(&path, &Filter::default()),
        Err(AuditError::Unreadable { .. })
    ));
}
