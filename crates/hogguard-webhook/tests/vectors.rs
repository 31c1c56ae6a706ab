//! Conformance tests against the public webhook vectors, plus the tampering cases built on them.
//!
//! `tests/data/webhooks-public.json` is a verbatim copy of the project's public vectors
//! (`shared/vectors/webhooks-public.json`): Standard Webhooks vector A and GitHub's documented
//! `X-Hub-Signature-256` example. It is compiled in, so the tests need nothing outside this crate.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use hogguard_webhook::{
    ManualClock, MemoryReplayStore, Scheme, Verifier, VerifyError, WebhookSecret, github, standard,
};
use serde_json::Value;
use sha2::Sha256;

const VECTORS: &str = include_str!("data/webhooks-public.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("vectors file is JSON")
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} is a string"))
}

/// Standard Webhooks vector A as typed values.
struct VectorA {
    secret: String,
    key_hex: String,
    msg_id: String,
    timestamp: u64,
    payload: String,
    signed_content: String,
    mac_hex: String,
    expected_signature: String,
    tolerance: u64,
    headers: Vec<(String, String)>,
}

fn vector_a() -> VectorA {
    let all = vectors();
    let v = &all["standard_webhooks_vector_a"];
    let headers = v["headers"]
        .as_object()
        .expect("headers object")
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().expect("string").to_owned()))
        .collect();
    VectorA {
        secret: text(v, "secret").to_owned(),
        key_hex: text(v, "key_hex").to_owned(),
        msg_id: text(v, "msg_id").to_owned(),
        timestamp: v["timestamp"].as_u64().expect("timestamp"),
        payload: text(v, "payload").to_owned(),
        signed_content: text(v, "signed_content").to_owned(),
        mac_hex: text(v, "mac_hex").to_owned(),
        expected_signature: text(v, "expected_signature").to_owned(),
        tolerance: v["default_tolerance_seconds"].as_u64().expect("tolerance"),
        headers,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn verifier_at(secret: &str, now: u64) -> Verifier {
    Verifier::new(Scheme::Standard, &[WebhookSecret::new(secret)])
        .expect("usable secret")
        .with_clock(ManualClock::new(now))
}

fn with_header(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let value = if n.eq_ignore_ascii_case(name) {
                value
            } else {
                v
            };
            (n.clone(), value.to_owned())
        })
        .collect()
}

// --- Standard Webhooks vector A ------------------------------------------------------------

#[test]
fn vector_a_signed_content_and_mac_match_the_published_algorithm() {
    let a = vector_a();
    assert_eq!(
        a.signed_content,
        format!("{}.{}.{}", a.msg_id, a.timestamp, a.payload)
    );
    let encoded_key = a.secret.strip_prefix("whsec_").expect("whsec_ secret");
    let key = STANDARD.decode(encoded_key).expect("base64 key");
    assert_eq!(hex(&key), a.key_hex);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(a.signed_content.as_bytes());
    let mac = mac.finalize().into_bytes();
    assert_eq!(hex(&mac), a.mac_hex);
    assert_eq!(format!("v1,{}", STANDARD.encode(mac)), a.expected_signature);
}

#[test]
fn vector_a_signs_to_the_expected_signature() {
    let a = vector_a();
    let signature = standard::sign(
        &WebhookSecret::new(a.secret.as_str()),
        &a.msg_id,
        a.timestamp,
        a.payload.as_bytes(),
    )
    .expect("usable secret");
    assert_eq!(signature, a.expected_signature);
}

#[test]
fn vector_a_verifies_with_and_without_the_whsec_prefix() {
    let a = vector_a();
    let unprefixed = a.secret.strip_prefix("whsec_").expect("whsec_ secret");
    for secret in [a.secret.as_str(), unprefixed] {
        let verified = verifier_at(secret, a.timestamp)
            .verify(&a.headers, a.payload.as_bytes())
            .expect("vector A verifies");
        assert_eq!(verified.message_id(), Some(a.msg_id.as_str()));
        assert_eq!(verified.timestamp(), Some(a.timestamp));
    }
}

#[test]
fn vector_a_header_names_are_case_insensitive() {
    let a = vector_a();
    let shouted: Vec<(String, String)> = a
        .headers
        .iter()
        .map(|(name, value)| (name.to_uppercase(), value.clone()))
        .collect();
    assert!(
        verifier_at(&a.secret, a.timestamp)
            .verify(&shouted, a.payload.as_bytes())
            .is_ok()
    );
}

#[test]
fn vector_a_tolerance_edges() {
    let a = vector_a();
    let body = a.payload.as_bytes();
    assert_eq!(
        Duration::from_secs(a.tolerance),
        hogguard_webhook::DEFAULT_TOLERANCE
    );
    // Clock after the timestamp: the delivery is old.
    let at_edge = verifier_at(&a.secret, a.timestamp + a.tolerance);
    assert!(at_edge.verify(&a.headers, body).is_ok());
    let past_edge = verifier_at(&a.secret, a.timestamp + a.tolerance + 1);
    assert!(matches!(
        past_edge.verify(&a.headers, body),
        Err(VerifyError::TooOld { age_secs }) if age_secs == a.tolerance + 1
    ));
    // Clock before the timestamp: the delivery is from the future.
    let at_edge = verifier_at(&a.secret, a.timestamp - a.tolerance);
    assert!(at_edge.verify(&a.headers, body).is_ok());
    let past_edge = verifier_at(&a.secret, a.timestamp - a.tolerance - 1);
    assert!(matches!(
        past_edge.verify(&a.headers, body),
        Err(VerifyError::TooNew { ahead_secs }) if ahead_secs == a.tolerance + 1
    ));
}

#[test]
fn vector_a_tampering_is_rejected() {
    let a = vector_a();
    let verifier = verifier_at(&a.secret, a.timestamp);
    let body = a.payload.as_bytes();
    let mismatched = [
        (a.headers.clone(), br#"{"test": 2432232315}"#.to_vec()),
        (a.headers.clone(), br#"{"test":2432232314}"#.to_vec()),
        (a.headers.clone(), [body, b"\n"].concat()),
        (
            with_header(&a.headers, "webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJeK"),
            body.to_vec(),
        ),
        (
            with_header(&a.headers, "webhook-timestamp", "1614265331"),
            body.to_vec(),
        ),
    ];
    for (headers, body) in mismatched {
        assert!(
            matches!(verifier.verify(&headers, &body), Err(VerifyError::Mismatch)),
            "{headers:?} {body:?}"
        );
    }
}

#[test]
fn vector_a_wrong_secret_is_rejected() {
    let a = vector_a();
    let wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx"; // hogguard:allow (the Standard Webhooks spec's public example secret)
    let result = verifier_at(wrong, a.timestamp).verify(&a.headers, a.payload.as_bytes());
    assert!(matches!(result, Err(VerifyError::Mismatch)));
}

#[test]
fn vector_a_truncated_padded_and_spaced_signatures() {
    let a = vector_a();
    let verifier = verifier_at(&a.secret, a.timestamp);
    let body = a.payload.as_bytes();
    let sig = a.expected_signature.as_str();
    let encoded = &sig[3..];
    let rejected = [
        sig[..sig.len() - 1].to_owned(),
        sig[..sig.len() - 2].to_owned(),
        format!("{sig}="),
        format!("{sig}A"),
        format!("{sig}AAAA"),
        format!("v1,A{encoded}"),
        format!("v1,,{encoded}"),
        format!("v2,{encoded}"),
        format!("v1a,{encoded}"),
        format!("v1 ,{encoded}"),
        format!("v1,{}", encoded.to_lowercase()),
    ];
    for header in rejected {
        let headers = with_header(&a.headers, "webhook-signature", &header);
        assert!(
            matches!(verifier.verify(&headers, body), Err(VerifyError::Mismatch)),
            "{header}"
        );
    }
    let accepted = [
        format!("  {sig}  "),
        format!("v1,bogus   {sig}"),
        format!("v2,{encoded} {sig}"),
        format!("v1a,{encoded} v2,{encoded} {sig} v3,x"),
    ];
    for header in accepted {
        let headers = with_header(&a.headers, "webhook-signature", &header);
        assert!(verifier.verify(&headers, body).is_ok(), "{header}");
    }
}

#[test]
fn vector_a_secret_signs_empty_and_non_utf8_bodies() {
    let a = vector_a();
    let verifier = verifier_at(&a.secret, a.timestamp);
    for body in [&b""[..], b"\xc3\x28 not utf-8 \xff"] {
        let signature = standard::sign(
            &WebhookSecret::new(a.secret.as_str()),
            &a.msg_id,
            a.timestamp,
            body,
        )
        .expect("usable secret");
        let headers = with_header(&a.headers, "webhook-signature", &signature);
        assert!(verifier.verify(&headers, body).is_ok());
        assert!(verifier.verify(&a.headers, body).is_err());
    }
}

#[test]
fn vector_a_replayed_is_rejected() {
    let a = vector_a();
    let verifier =
        verifier_at(&a.secret, a.timestamp).with_replay_store(MemoryReplayStore::default());
    assert!(verifier.verify(&a.headers, a.payload.as_bytes()).is_ok());
    assert!(matches!(
        verifier.verify(&a.headers, a.payload.as_bytes()),
        Err(VerifyError::Replay)
    ));
}

// --- GitHub --------------------------------------------------------------------------------

#[test]
fn github_documented_example() {
    let all = vectors();
    let g = &all["github_x_hub_signature_256"];
    let secret = text(g, "secret");
    let payload = text(g, "payload").as_bytes();
    let expected = text(g, "expected_header");

    let signed = github::sign(&WebhookSecret::new(secret), payload).expect("usable secret");
    assert_eq!(signed, expected);

    let verifier =
        Verifier::new(Scheme::GitHub, &[WebhookSecret::new(secret)]).expect("usable secret");
    let headers = [(text(g, "header_name"), expected)];
    let verified = verifier
        .verify(&headers, payload)
        .expect("example verifies");
    assert_eq!(verified.timestamp(), None);
    assert!(matches!(
        verifier.verify(&headers, b"Hello, World?"),
        Err(VerifyError::Mismatch)
    ));
    let wrong = Verifier::new(
        Scheme::GitHub,
        &[WebhookSecret::new("It's a Secret to Everybod")],
    )
    .expect("usable secret");
    assert!(matches!(
        wrong.verify(&headers, payload),
        Err(VerifyError::Mismatch)
    ));
}
