//! Any bytes, scanned as a stream with custom rules on: no panic, and every finding's secret
//! is a substring of the input.
#![no_main]

use hogguard_scan::{CustomRule, ScanOptions, Scanner, Severity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let custom = [CustomRule {
        id: "fuzz".into(),
        regex: r"tok_([A-Za-z0-9]{8,})".into(),
        keywords: vec!["tok_".into()],
        min_entropy: Some(2.0),
        severity: Severity::High,
        secret: true,
        description: None,
    }];
    let scanner = Scanner::new(&custom, ScanOptions { scan_binary: true, ..Default::default() }).unwrap();
    let outcome = scanner.scan_reader("-", data).unwrap();
    for finding in &outcome.findings {
        let value = finding.value.expose().as_bytes();
        assert!(data.windows(value.len()).any(|w| w == value));
        assert!(finding.line >= 1 && finding.column >= 1);
    }
});
