//! Feeds arbitrary bytes as headers and body to every scheme's verifier: none may panic, and
//! none may accept a delivery the fuzzer made up without the secret (the secrets below appear in
//! no test vector, so seeding the corpus with real deliveries cannot trip that check).
//!
//! Input layout: the first line is the body; every further line is one header, `name:value`,
//! where a name byte below 0x0b picks one of the schemes' real header names (Svix's aliases
//! included) so the fuzzer reaches the parsers quickly. Values are raw bytes (not necessarily
//! UTF-8).

#![no_main]

use std::sync::LazyLock;

use hogguard_webhook::{ManualClock, MemoryReplayStore, Scheme, Verifier, WebhookSecret};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_614_265_330;

const KNOWN_NAMES: [&str; 11] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "stripe-signature",
    "x-hub-signature-256",
    "x-signature",
    "Webhook-Signature",
    "X-Hub-Signature-256",
];

static VERIFIERS: LazyLock<Vec<Verifier>> = LazyLock::new(|| {
    let standard = WebhookSecret::new("whsec_ZnV6emluZyBzZWNyZXQsIG5vdCBpbiBhbnkgdmVjdG9y"); // hogguard:allow (a test value, not a credential)
    let text = WebhookSecret::new("whsec_fuzzing_text_secret");
    [
        (Scheme::Standard, standard),
        (Scheme::Stripe, WebhookSecret::new(text.expose())),
        (Scheme::GitHub, WebhookSecret::new(text.expose())),
        (Scheme::hex("x-signature"), text),
    ]
    .into_iter()
    .map(|(scheme, secret)| {
        Verifier::new(scheme, &[secret])
            .expect("fuzz secrets are valid")
            .with_clock(ManualClock::new(NOW))
            .with_replay_store(MemoryReplayStore::new(1024))
    })
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&byte| byte == b'\n');
    let body = lines.next().unwrap_or_default();
    let headers: Vec<(String, &[u8])> = lines
        .map(|line| {
            let colon = line
                .iter()
                .position(|&byte| byte == b':')
                .unwrap_or(line.len());
            let (name, value) = (&line[..colon], line.get(colon + 1..).unwrap_or_default());
            let name = match name {
                [index] if usize::from(*index) < KNOWN_NAMES.len() => {
                    KNOWN_NAMES[usize::from(*index)].to_owned()
                }
                _ => String::from_utf8_lossy(name).into_owned(),
            };
            (name, value)
        })
        .collect();
    for verifier in VERIFIERS.iter() {
        // Forging an HMAC-SHA256 by chance is out of reach; success means a verifier bug.
        assert!(
            verifier.verify(&headers, body).is_err(),
            "{} accepted a fuzzer-made delivery",
            verifier.scheme().name()
        );
    }
});
