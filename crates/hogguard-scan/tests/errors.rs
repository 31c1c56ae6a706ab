//! Every error the scanner returns says what failed once, with its cause as its source.

use hogguard_scan::{Baseline, CustomRule, ScanOptions, Scanner, Severity};
use hogguard_testkit::errors::assert_no_repeated_segment;

#[test]
fn error_chains_never_repeat_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let scanner = Scanner::new(&[], ScanOptions::default()).unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    let wrong_version = dir.path().join("v2.json");
    std::fs::write(&wrong_version, r#"{"version":2,"findings":{}}"#).unwrap();
    let errors = [
        scanner.scan_git(dir.path()).unwrap_err(),
        scanner.scan_staged(dir.path()).unwrap_err(),
        Baseline::load(&dir.path().join("missing.json")).unwrap_err(),
        Baseline::load(&bad_json).unwrap_err(),
        Baseline::load(&wrong_version).unwrap_err(),
        Baseline::load(std::path::Path::new("/dev/zero")).unwrap_err(),
        Scanner::new(
            &[CustomRule {
                id: "x".into(),
                regex: "(".into(),
                keywords: vec![],
                min_entropy: None,
                severity: Severity::High,
                secret: true,
                description: None,
            }],
            ScanOptions::default(),
        )
        .err()
        .unwrap(),
    ];
    for error in &errors {
        assert_no_repeated_segment(error);
    }
    // Each names its input once, and a cause is a source, not text.
    let missing = hogguard_testkit::errors::chain(&errors[2]).join(": ");
    assert_eq!(missing.matches("missing.json").count(), 1, "{missing}");
    assert!(std::error::Error::source(&errors[2]).is_some());
    assert!(std::error::Error::source(&errors[3]).is_some());
    assert!(std::error::Error::source(&errors[0]).is_some());
}

#[test]
fn a_baseline_that_is_not_a_regular_file_is_refused() {
    let error = Baseline::load(std::path::Path::new("/dev/zero")).unwrap_err();
    let chain = hogguard_testkit::errors::chain(&error).join(": ");
    assert_eq!(
        chain,
        "the baseline could not be loaded: /dev/zero is not a regular file"
    );
}
