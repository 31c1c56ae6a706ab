//! Any bytes, scanned as a stream with custom rules on: no panic, and every finding's secret
//! is a substring of the input, or of the input decoded as UTF-16 (which the scanner decodes).
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
    let utf16 = |little: bool| {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|pair| if little { u16::from_le_bytes([pair[0], pair[1]]) } else { u16::from_be_bytes([pair[0], pair[1]]) })
            .collect();
        String::from_utf16_lossy(&units).into_bytes()
    };
    let texts = [data.to_vec(), utf16(true), utf16(false)];
    for finding in &outcome.findings {
        let value = finding.value.expose().as_bytes();
        assert!(texts.iter().any(|text| text.windows(value.len()).any(|w| w == value)));
        assert!(finding.line >= 1 && finding.column >= 1);
    }
});
