//! Property tests: every single-bit change to a signed delivery is rejected, and verification
//! never panics, whatever the headers and body.

use hogguard_webhook::{
    ManualClock, MemoryReplayStore, Scheme, Verifier, WebhookSecret, github, hex, standard, stripe,
};
use proptest::prelude::*;

const NOW: u64 = 1_614_265_330;
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // hogguard:allow (the Standard Webhooks spec's public example secret)
const TEXT_SECRET: &str = "whsec_text_secret_for_stripe_github_hex";

fn verifier(scheme: Scheme) -> Verifier {
    let secret = match scheme {
        Scheme::Standard => STANDARD_SECRET,
        _ => TEXT_SECRET,
    };
    Verifier::new(scheme, &[WebhookSecret::new(secret)])
        .expect("usable secret")
        .with_clock(ManualClock::new(NOW))
        .with_replay_store(MemoryReplayStore::new(64))
}

fn all_verifiers() -> [Verifier; 4] {
    [
        verifier(Scheme::Standard),
        verifier(Scheme::Stripe),
        verifier(Scheme::GitHub),
        verifier(Scheme::hex("x-signature")),
    ]
}

/// Header names and raw value bytes, so any bit of any value can be flipped.
type RawHeaders = Vec<(&'static str, Vec<u8>)>;

/// One correctly signed delivery of `body` per scheme.
fn signed_deliveries(body: &[u8], timestamp: u64) -> Vec<(Scheme, RawHeaders)> {
    let standard_secret = WebhookSecret::new(STANDARD_SECRET);
    let text_secret = WebhookSecret::new(TEXT_SECRET);
    let id = "msg_2Lh9vYvKbGq3";
    let standard_signature = standard::sign(&standard_secret, id, timestamp, body)
        .expect("usable secret")
        .into_bytes();
    vec![
        (
            Scheme::Standard,
            vec![
                ("webhook-id", id.into()),
                ("webhook-timestamp", timestamp.to_string().into_bytes()),
                ("webhook-signature", standard_signature.clone()),
            ],
        ),
        (
            Scheme::Standard,
            vec![
                ("svix-id", id.into()),
                ("svix-timestamp", timestamp.to_string().into_bytes()),
                ("svix-signature", standard_signature),
            ],
        ),
        (
            Scheme::Stripe,
            vec![(
                "stripe-signature",
                stripe::sign(&text_secret, timestamp, body)
                    .expect("usable secret")
                    .into_bytes(),
            )],
        ),
        (
            Scheme::GitHub,
            vec![(
                "x-hub-signature-256",
                github::sign(&text_secret, body)
                    .expect("usable secret")
                    .into_bytes(),
            )],
        ),
        (
            Scheme::hex("x-signature"),
            vec![(
                "x-signature",
                hex::sign(&text_secret, body)
                    .expect("usable secret")
                    .into_bytes(),
            )],
        ),
    ]
}

proptest! {
    #[test]
    fn any_single_bit_flip_is_rejected(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        timestamp_offset in 0_u64..=600,
        field in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
    ) {
        // Any timestamp within the tolerance, so flips are caught by the signature, not only by
        // the clock.
        let timestamp = NOW - 300 + timestamp_offset;
        for (scheme, headers) in signed_deliveries(&body, timestamp) {
            let fresh = verifier(scheme.clone());
            prop_assert!(fresh.verify(&headers, &body).is_ok(), "{} unmodified", scheme.name());

            // Field 0 is the body; the others are header values.
            let field = field.index(headers.len() + 1);
            let (flipped_headers, flipped_body) = if field == 0 {
                if body.is_empty() {
                    continue;
                }
                let mut body = body.clone();
                let bit = bit.index(body.len() * 8);
                body[bit / 8] ^= 1 << (bit % 8);
                (headers.clone(), body)
            } else {
                let mut headers = headers.clone();
                let value = &mut headers[field - 1].1;
                let bit = bit.index(value.len() * 8);
                value[bit / 8] ^= 1 << (bit % 8);
                (headers, body.clone())
            };
            let result = verifier(scheme.clone()).verify(&flipped_headers, &flipped_body);
            prop_assert!(
                result.is_err(),
                "{} accepted a flipped field {field}: {flipped_headers:?}",
                scheme.name()
            );
        }
    }

    #[test]
    fn verify_never_panics_on_arbitrary_headers(
        headers in proptest::collection::vec(
            (
                prop_oneof![
                    Just("webhook-id".to_owned()),
                    Just("Webhook-Timestamp".to_owned()),
                    Just("webhook-signature".to_owned()),
                    Just("svix-id".to_owned()),
                    Just("Svix-Timestamp".to_owned()),
                    Just("svix-signature".to_owned()),
                    Just("stripe-signature".to_owned()),
                    Just("X-Hub-Signature-256".to_owned()),
                    Just("x-signature".to_owned()),
                    ".{0,20}",
                ],
                proptest::collection::vec(any::<u8>(), 0..200),
            ),
            0..8,
        ),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        for verifier in all_verifiers() {
            let _ = verifier.verify(&headers, &body);
        }
    }

    #[test]
    fn a_delivery_whose_two_names_of_a_header_disagree_is_rejected(
        body in proptest::collection::vec(any::<u8>(), 0..100),
        header in 0_usize..3,
        other in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let (_, mut headers) = signed_deliveries(&body, NOW).swap_remove(0);
        let alias = ["svix-id", "svix-timestamp", "svix-signature"][header];
        // No signed value starts with `x`, so this one differs whatever the rest is.
        let other = [&b"x"[..], &other].concat();
        headers.push((alias, other));
        prop_assert!(verifier(Scheme::Standard).verify(&headers, &body).is_err());
    }

    #[test]
    fn verify_never_panics_on_near_valid_headers(
        id in "[ -~]{0,40}",
        timestamp in "[0-9+ -]{0,24}",
        standard_signature in "( {0,3}(v1|v1a|v2|)[,]?[A-Za-z0-9+/=]{0,48}){0,20}",
        stripe_signature in "((t|v1|v0|x)=[0-9a-fA-F]{0,66}|[, =]){0,40}",
        hex_signature in "(sha256=|sha1=)?[0-9a-fA-F]{0,70}",
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let headers = [
            ("webhook-id", id.clone()),
            ("svix-id", id),
            ("webhook-timestamp", timestamp.clone()),
            ("svix-timestamp", timestamp),
            ("webhook-signature", standard_signature.clone()),
            ("svix-signature", standard_signature),
            ("stripe-signature", stripe_signature),
            ("x-hub-signature-256", hex_signature.clone()),
            ("x-signature", hex_signature),
        ];
        for verifier in all_verifiers() {
            let _ = verifier.verify(&headers, &body);
        }
    }
}
