//! Any text as a `.env` file: parsed or refused with a line number, never a panic, and every
//! value's span points into the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match hogguard_dotenv::parse(text) {
            Ok(env) => {
                for entry in env.entries() {
                    assert!(text.get(entry.span.clone()).is_some());
                }
            }
            Err(error) => assert!(error.line >= 1),
        }
    }
});
