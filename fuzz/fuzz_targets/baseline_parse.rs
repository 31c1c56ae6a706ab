//! Any text as a baseline file: parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(baseline) = hogguard_scan::Baseline::parse(text) {
            assert_eq!(hogguard_scan::Baseline::parse(&baseline.to_json()), Ok(baseline));
        }
    }
});
