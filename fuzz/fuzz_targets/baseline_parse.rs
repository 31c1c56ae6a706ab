//! Any bytes as a baseline file: parsed or refused, never a panic; what parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(baseline) = hogguard_scan::Baseline::parse(data) {
        let again = hogguard_scan::Baseline::parse(baseline.to_json().as_bytes()).ok();
        assert_eq!(again, Some(baseline));
    }
});
