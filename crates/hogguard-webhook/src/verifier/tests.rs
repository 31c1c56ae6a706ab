use std::sync::Arc;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::*;
use crate::clock::ManualClock;
use crate::encoding::{encode_base64, encode_hex};
use crate::replay::{FailingCommits, MemoryReplayStore, ReplayStoreError};
use crate::secret::standard_secret_from_key;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // hogguard:allow (the Standard Webhooks spec's public example secret)
const OTHER_SECRET: &str = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24="; // hogguard:allow (a test value, not a credential)
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const NOW: u64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;

fn secret(text: &str) -> WebhookSecret {
    WebhookSecret::new(text)
}

fn verifier(scheme: Scheme, secrets: &[&str]) -> Verifier {
    let secrets: Vec<_> = secrets.iter().map(|text| secret(text)).collect();
    Verifier::new(scheme, &secrets)
        .unwrap()
        .with_clock(ManualClock::new(NOW))
}

fn standard_headers(id: &str, timestamp: &str, signature: &str) -> Vec<(String, String)> {
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.into()),
        ("webhook-signature".into(), signature.into()),
    ]
}

fn sign_standard(secret_text: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    standard::sign(&secret(secret_text), id, timestamp, body).unwrap()
}

fn signed_standard(id: &str, timestamp: u64, body: &[u8]) -> Vec<(String, String)> {
    let signature = sign_standard(SECRET, id, timestamp, body);
    standard_headers(id, &timestamp.to_string(), &signature)
}

// --- Standard Webhooks ---------------------------------------------------------------------

#[test]
fn standard_round_trip_carries_id_and_timestamp() {
    let verified = verifier(Scheme::Standard, &[SECRET])
        .verify(&signed_standard(ID, NOW, BODY), BODY)
        .unwrap();
    assert_eq!(verified.scheme(), &Scheme::Standard);
    assert_eq!(verified.message_id(), Some(ID));
    assert_eq!(verified.timestamp(), Some(NOW));
    assert_eq!(verified.secret_index(), 0);
}

#[test]
fn standard_secret_works_with_and_without_prefix() {
    let unprefixed = &SECRET[crate::SECRET_PREFIX.len()..];
    let signature = sign_standard(unprefixed, ID, NOW, BODY);
    assert_eq!(signature, sign_standard(SECRET, ID, NOW, BODY));
    let headers = standard_headers(ID, &NOW.to_string(), &signature);
    assert!(
        verifier(Scheme::Standard, &[SECRET])
            .verify(&headers, BODY)
            .is_ok()
    );
    assert!(
        verifier(Scheme::Standard, &[unprefixed])
            .verify(&headers, BODY)
            .is_ok()
    );
}

#[test]
fn standard_tampering_with_body_id_or_timestamp_is_a_mismatch() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let signature = sign_standard(SECRET, ID, NOW, BODY);
    let now = NOW.to_string();
    let cases = [
        (
            standard_headers(ID, &now, &signature),
            &br#"{"test": 2432232315}"#[..],
        ),
        (
            standard_headers("msg_p5jXN8AQM9LWM0D4loKWxJel", &now, &signature),
            BODY,
        ),
        (
            standard_headers(ID, &(NOW - 1).to_string(), &signature),
            BODY,
        ),
        // Same number, different signed text.
        (standard_headers(ID, &format!("0{NOW}"), &signature), BODY),
    ];
    for (headers, body) in cases {
        assert!(
            matches!(verifier.verify(&headers, body), Err(VerifyError::Mismatch)),
            "{headers:?}"
        );
    }
}

#[test]
fn standard_wrong_secret_is_a_mismatch() {
    let headers = signed_standard(ID, NOW, BODY);
    let result = verifier(Scheme::Standard, &[OTHER_SECRET]).verify(&headers, BODY);
    assert!(matches!(result, Err(VerifyError::Mismatch)));
}

#[test]
fn standard_any_valid_v1_among_several_entries_passes() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let good = sign_standard(SECRET, ID, NOW, BODY);
    let other = sign_standard(OTHER_SECRET, ID, NOW, BODY);
    let good_sig = &good[3..];
    let headers = [
        // Rotation: signed with an old and a new secret.
        format!("{other} {good}"),
        format!("{good} {other}"),
        // Unknown versions next to a valid v1.
        format!("v2,{good_sig} v1a,{good_sig} {good}"),
        format!("v1a,{good_sig} {good} v2,abc"),
        // Extra spaces.
        format!("   {other}    {good}   "),
        format!("\t{good}\t"),
        // Garbage entries are skipped.
        format!("v1 , v1,,, nonsense {good}"),
    ];
    for header in headers {
        let result = verifier.verify(&standard_headers(ID, &NOW.to_string(), &header), BODY);
        assert!(result.is_ok(), "{header:?}: {result:?}");
    }
}

#[test]
fn standard_truncated_padded_or_respelled_signatures_do_not_match() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let good = sign_standard(SECRET, ID, NOW, BODY);
    let without_padding = good.trim_end_matches('=');
    let headers = [
        good[..good.len() - 1].to_owned(),
        good[..20].to_owned(),
        without_padding.to_owned(),
        format!("{good}="),
        format!("{good}AAAA"),
        format!("{without_padding}A="),
        good.replacen("v1,", "v2,", 1),
        good.replacen("v1,", "V1,", 1),
        good.replacen("v1,", "v1, ", 1),
        good.replacen("v1,", "", 1),
        // Hex of the same MAC is not what Standard Webhooks sends.
        format!("v1,{}", encode_hex(&content_mac(SECRET, BODY))),
        "v1,".to_owned(),
        String::new(),
    ];
    for header in headers {
        let result = verifier.verify(&standard_headers(ID, &NOW.to_string(), &header), BODY);
        assert!(
            matches!(result, Err(VerifyError::Mismatch)),
            "{header:?}: {result:?}"
        );
    }
}

/// The Standard Webhooks MAC of `body` for `ID` at `NOW`, computed independently of the crate.
fn content_mac(secret_text: &str, body: &[u8]) -> [u8; 32] {
    let key = secret(secret_text).key(KeyEncoding::Base64).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{ID}.{NOW}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[test]
fn standard_sign_refuses_ids_the_verifier_would_refuse() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let now = NOW.to_string();
    let long_id = "m".repeat(standard::MAX_ID_LEN + 1);
    for id in [
        "msg.1",
        "msg 1",
        "",
        "msg_é",
        "msg\n1",
        "msg\t1",
        long_id.as_str(),
    ] {
        assert_eq!(
            standard::sign(&secret(SECRET), id, NOW, BODY),
            Err(standard::SignError::InvalidMessageId),
            "{id:?}"
        );
        // The verifier refuses the same ids, whatever the signature.
        let headers = standard_headers(id, &now, &sign_standard(SECRET, ID, NOW, BODY));
        assert!(verifier.verify(&headers, BODY).is_err(), "{id:?}");
    }
    // A bad secret is reported as such, not as a bad id.
    assert_eq!(
        standard::sign(&secret("whsec_???"), "msg.1", NOW, BODY),
        Err(standard::SignError::Secret(SecretError::NotBase64))
    );
    // The longest accepted id signs and verifies.
    let longest = "m".repeat(standard::MAX_ID_LEN);
    assert!(
        verifier
            .verify(&signed_standard(&longest, NOW, BODY), BODY)
            .is_ok()
    );
    let message = standard::SignError::InvalidMessageId.to_string();
    assert_eq!(
        message,
        "message id must be 1 to 256 bytes of printable ASCII without `.`"
    );
}

#[test]
fn standard_sign_writes_every_timestamp_so_the_verifier_reads_it() {
    for timestamp in [0, NOW, u64::MAX] {
        let verifier =
            verifier(Scheme::Standard, &[SECRET]).with_clock(ManualClock::new(timestamp));
        let verified = verifier
            .verify(&signed_standard(ID, timestamp, BODY), BODY)
            .unwrap();
        assert_eq!(verified.timestamp(), Some(timestamp));
    }
}

#[test]
fn standard_signature_is_base64_hmac_of_id_timestamp_body() {
    let expected = format!("v1,{}", encode_base64(&content_mac(SECRET, BODY)));
    assert_eq!(sign_standard(SECRET, ID, NOW, BODY), expected);
}

#[test]
fn standard_empty_and_non_utf8_bodies_verify() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    for body in [&b""[..], b"\xff\xfe\x00binary\x80", &[0_u8; 1000]] {
        let headers = signed_standard(ID, NOW, body);
        assert!(verifier.verify(&headers, body).is_ok(), "{body:?}");
        assert!(matches!(
            verifier.verify(&headers, b"x"),
            Err(VerifyError::Mismatch)
        ));
    }
}

#[test]
fn standard_too_many_signatures_is_malformed() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let good = sign_standard(SECRET, ID, NOW, BODY);
    let filler = vec!["v2,x"; crate::signature::MAX_SIGNATURES - 1].join(" ");
    let at_cap = format!("{filler} {good}");
    let over_cap = format!("{filler} v2,x {good}");
    let now = NOW.to_string();
    assert!(
        verifier
            .verify(&standard_headers(ID, &now, &at_cap), BODY)
            .is_ok()
    );
    assert!(matches!(
        verifier.verify(&standard_headers(ID, &now, &over_cap), BODY),
        Err(VerifyError::MalformedHeader { name, .. }) if name == standard::SIGNATURE_HEADER
    ));
    let too_long = format!("{good}{}", " ".repeat(5000));
    assert!(matches!(
        verifier.verify(&standard_headers(ID, &now, &format!("{too_long}x")), BODY),
        Err(VerifyError::MalformedHeader { .. })
    ));
}

#[test]
fn standard_missing_headers_are_named() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let full = signed_standard(ID, NOW, BODY);
    for missing in [
        standard::ID_HEADER,
        standard::TIMESTAMP_HEADER,
        standard::SIGNATURE_HEADER,
    ] {
        let headers: Vec<_> = full.iter().filter(|(name, _)| name != missing).collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let err = verifier.verify(&headers, BODY).unwrap_err();
        assert!(
            matches!(&err, VerifyError::MissingHeader { name } if name == missing),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("missing header `{missing}`"));
    }
}

/// `headers` with each `webhook-` name given Svix's brand where `rename` says so.
fn branded(headers: &[(String, String)], rename: [bool; 3]) -> Vec<(String, String)> {
    headers
        .iter()
        .zip(rename)
        .map(|((name, value), rename)| {
            let name = if rename {
                name.replacen("webhook-", "svix-", 1)
            } else {
                name.clone()
            };
            (name, value.clone())
        })
        .collect()
}

#[test]
fn svix_branded_headers_are_aliases_of_the_standard_ones() {
    // See: issue 12 point 17 (Svix-branded deliveries got "missing header webhook-id").
    let full = signed_standard(ID, NOW, BODY);
    let mixes = [
        [true, true, true],
        [true, false, false],
        [false, true, false],
        [false, false, true],
        [false, true, true],
    ];
    for rename in mixes {
        let verifier = verifier(Scheme::Standard, &[SECRET]);
        let verified = verifier.verify(&branded(&full, rename), BODY);
        assert_eq!(
            verified
                .map(|verified| verified.message_id().map(str::to_owned))
                .ok(),
            Some(Some(ID.to_owned())),
            "{rename:?}"
        );
    }
}

#[test]
fn both_names_of_a_header_must_agree() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let full = signed_standard(ID, NOW, BODY);
    // The same values under both names are one delivery.
    let mut both = full.clone();
    both.extend(branded(&full, [true, true, true]));
    assert!(verifier.verify(&both, BODY).is_ok());

    let other = signed_standard("msg_other", NOW + 1, BODY);
    for (index, name) in ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .enumerate()
    {
        let mut disagreeing = full.clone();
        let (alias, value) = &branded(&other, [true, true, true])[index];
        disagreeing.push((alias.clone(), value.clone()));
        let err = verifier.verify(&disagreeing, BODY).unwrap_err();
        assert!(
            matches!(&err, VerifyError::MalformedHeader { name: named, .. } if named == name),
            "{name}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("malformed header `{name}`: `{name}` and `{alias}` disagree")
        );
    }
}

#[test]
fn a_malformed_svix_header_is_named_as_sent() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let headers = branded(
        &standard_headers(ID, "soon", &sign_standard(SECRET, ID, NOW, BODY)),
        [true, true, true],
    );
    let err = verifier.verify(&headers, BODY).unwrap_err();
    assert!(
        matches!(&err, VerifyError::MalformedHeader { name, .. } if name == "svix-timestamp"),
        "{err:?}"
    );
}

#[test]
fn standard_bad_ids_and_timestamps_are_malformed() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let signature = sign_standard(SECRET, ID, NOW, BODY);
    let now = NOW.to_string();
    let long_id = "m".repeat(standard::MAX_ID_LEN + 1);
    let cases = [
        ("msg.1", now.as_str()),
        ("msg 1", &now),
        ("", &now),
        ("msg_é", &now),
        (long_id.as_str(), &now),
        (ID, "-1"),
        (ID, "1614265330.0"),
        (ID, "1e9"),
        (ID, ""),
        (ID, "99999999999999999999999"),
    ];
    for (id, timestamp) in cases {
        let result = verifier.verify(&standard_headers(id, timestamp, &signature), BODY);
        assert!(
            matches!(result, Err(VerifyError::MalformedHeader { .. })),
            "{id:?} {timestamp:?}: {result:?}"
        );
    }
    let non_utf8_id = [
        ("webhook-id", &b"msg_\xff"[..]),
        ("webhook-timestamp", now.as_bytes()),
        ("webhook-signature", signature.as_bytes()),
    ];
    assert!(matches!(
        verifier.verify(&non_utf8_id, BODY),
        Err(VerifyError::MalformedHeader { .. })
    ));
}

#[test]
fn repeated_headers_are_malformed() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let mut headers = signed_standard(ID, NOW, BODY);
    headers.push(("Webhook-Id".into(), "msg_other".into()));
    assert!(matches!(
        verifier.verify(&headers, BODY),
        Err(VerifyError::MalformedHeader { name, .. }) if name == standard::ID_HEADER
    ));
}

// --- Timestamp tolerance -------------------------------------------------------------------

/// Checks that deliveries signed exactly at the default tolerance either way verify and one
/// second past it do not, `verify_at` verifying a delivery signed at the given time.
fn assert_tolerance_edges(verify_at: impl Fn(u64) -> Result<Verified, VerifyError>) {
    let tolerance = DEFAULT_TOLERANCE.as_secs();
    assert!(
        verify_at(NOW - tolerance).is_ok(),
        "exactly at the past edge"
    );
    assert!(
        verify_at(NOW + tolerance).is_ok(),
        "exactly at the future edge"
    );
    assert!(matches!(
        verify_at(NOW - tolerance - 1),
        Err(VerifyError::TooOld { age_secs: 301 })
    ));
    assert!(matches!(
        verify_at(NOW + tolerance + 1),
        Err(VerifyError::TooNew { ahead_secs: 301 })
    ));
}

#[test]
fn tolerance_boundaries_in_both_directions() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    assert_tolerance_edges(|timestamp| {
        verifier.verify(&signed_standard(ID, timestamp, BODY), BODY)
    });
}

#[test]
fn tolerance_is_configurable() {
    let verifier = verifier(Scheme::Standard, &[SECRET]).with_tolerance(Duration::from_secs(10));
    assert_eq!(verifier.tolerance(), Duration::from_secs(10));
    let verify_at = |timestamp: u64| verifier.verify(&signed_standard(ID, timestamp, BODY), BODY);
    assert!(verify_at(NOW - 10).is_ok());
    assert!(verify_at(NOW + 10).is_ok());
    assert!(matches!(
        verify_at(NOW - 11),
        Err(VerifyError::TooOld { .. })
    ));
    assert!(matches!(
        verify_at(NOW + 11),
        Err(VerifyError::TooNew { .. })
    ));

    let strict = verifier.with_tolerance(Duration::ZERO);
    assert!(strict.verify(&signed_standard(ID, NOW, BODY), BODY).is_ok());
    assert!(
        strict
            .verify(&signed_standard(ID, NOW + 1, BODY), BODY)
            .is_err()
    );
}

#[test]
fn extreme_clock_and_timestamp_values_do_not_overflow() {
    let at_zero = verifier(Scheme::Standard, &[SECRET]).with_clock(ManualClock::new(0));
    let result = at_zero.verify(&signed_standard(ID, u64::MAX, BODY), BODY);
    assert!(matches!(
        result,
        Err(VerifyError::TooNew {
            ahead_secs: u64::MAX
        })
    ));
    let at_max = verifier(Scheme::Standard, &[SECRET])
        .with_clock(ManualClock::new(u64::MAX))
        .with_tolerance(Duration::MAX)
        .with_replay_store(MemoryReplayStore::new(4));
    assert!(at_max.verify(&signed_standard(ID, 0, BODY), BODY).is_ok());
}

// --- Rotation ------------------------------------------------------------------------------

#[test]
fn any_active_secret_verifies_and_the_index_says_which() {
    let verifier = verifier(Scheme::Standard, &[OTHER_SECRET, SECRET]);
    let new = verifier
        .verify(&signed_standard(ID, NOW, BODY), BODY)
        .unwrap();
    assert_eq!(new.secret_index(), 1);

    let old_signature = sign_standard(OTHER_SECRET, ID, NOW, BODY);
    let old = verifier
        .verify(
            &standard_headers(ID, &NOW.to_string(), &old_signature),
            BODY,
        )
        .unwrap();
    assert_eq!(old.secret_index(), 0);

    let third = standard_secret_from_key(b"a third, unknown secret");
    let unknown = standard::sign(&third, ID, NOW, BODY).unwrap();
    assert!(matches!(
        verifier.verify(&standard_headers(ID, &NOW.to_string(), &unknown), BODY),
        Err(VerifyError::Mismatch)
    ));
}

#[test]
fn verifier_needs_usable_secrets() {
    assert_eq!(
        Verifier::new(Scheme::Standard, &[]).err(),
        Some(BuildError::Secret(SecretError::NoSecrets))
    );
    let one_bad = [secret(SECRET), secret("whsec_???")];
    let err = Verifier::new(Scheme::Standard, &one_bad).err();
    assert_eq!(err, Some(BuildError::Secret(SecretError::NotBase64)));
    assert_eq!(err.unwrap().to_string(), SecretError::NotBase64.to_string());
    // The same text is fine where the scheme uses it verbatim.
    assert!(Verifier::new(Scheme::Stripe, &one_bad).is_ok());
}

#[test]
fn debug_and_errors_never_show_secrets_or_signatures() {
    let verifier = verifier(Scheme::Standard, &[SECRET]);
    let debug = format!("{verifier:?}");
    assert!(!debug.contains(&SECRET[6..]), "{debug}");
    let signature = sign_standard(SECRET, ID, NOW, BODY);
    let wrong = sign_standard(OTHER_SECRET, ID, NOW, BODY);
    let err = verifier
        .verify(&standard_headers(ID, &NOW.to_string(), &wrong), BODY)
        .unwrap_err();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(&signature[3..]));
        assert!(!shown.contains(&wrong[3..]));
    }
}

// --- Replay protection ---------------------------------------------------------------------

#[test]
fn replays_are_refused_for_twice_the_tolerance() {
    let clock = Arc::new(ManualClock::new(NOW));
    let verifier = verifier(Scheme::Standard, &[SECRET])
        .with_clock(Arc::clone(&clock))
        .with_replay_store(MemoryReplayStore::new(100));
    // Timestamped at the future edge, so it stays acceptable until NOW + 2 × tolerance.
    let edge = NOW + 300;
    let headers = signed_standard(ID, edge, BODY);
    assert!(verifier.verify(&headers, BODY).is_ok());
    assert!(matches!(
        verifier.verify(&headers, BODY),
        Err(VerifyError::Replay)
    ));
    clock.set(NOW + 600);
    assert!(matches!(
        verifier.verify(&headers, BODY),
        Err(VerifyError::Replay)
    ));
    clock.set(NOW + 601);
    assert!(matches!(
        verifier.verify(&headers, BODY),
        Err(VerifyError::TooOld { .. })
    ));
}

#[test]
fn a_copy_of_a_taken_delivery_is_a_replay_whatever_its_timestamp() {
    // The message id is the delivery, as the specification asks: a re-signed copy with a new
    // timestamp is still the same delivery.
    let verifier =
        verifier(Scheme::Standard, &[SECRET]).with_replay_store(MemoryReplayStore::new(100));
    assert!(
        verifier
            .verify(&signed_standard(ID, NOW, BODY), BODY)
            .is_ok()
    );
    assert!(matches!(
        verifier.verify(&signed_standard(ID, NOW + 5, BODY), BODY),
        Err(VerifyError::Replay)
    ));
}

#[test]
fn a_claim_holds_the_delivery_until_it_is_committed_or_released() {
    // See: issue 11 point 11.
    let store = Arc::new(MemoryReplayStore::new(100));
    let verifier = verifier(Scheme::Standard, &[SECRET]).with_replay_store(Arc::clone(&store));
    let headers = signed_standard(ID, NOW, BODY);

    let claim = verifier.claim(&headers, BODY).unwrap();
    assert_eq!(claim.verified().message_id(), Some(ID));
    // A copy while the first is handled, even re-signed, is not handled twice.
    for copy in [&headers, &signed_standard(ID, NOW + 1, BODY)] {
        assert!(matches!(
            verifier.claim(copy, BODY),
            Err(VerifyError::InFlight)
        ));
    }
    let released = claim.release();
    assert_eq!(released.message_id(), Some(ID));
    assert!(store.is_empty());

    // Dropping a claim releases it too (a failed hand-off, a panic).
    drop(verifier.claim(&headers, BODY).unwrap());
    assert!(store.is_empty());

    let committed = verifier.claim(&headers, BODY).unwrap().commit().unwrap();
    assert_eq!(committed.secret_index(), 0);
    assert!(matches!(
        verifier.claim(&headers, BODY),
        Err(VerifyError::Replay)
    ));
}

#[test]
fn a_commit_that_fails_releases_the_delivery() {
    let store = Arc::new(FailingCommits::default());
    let verifier = verifier(Scheme::Standard, &[SECRET]).with_replay_store(Arc::clone(&store));
    let headers = signed_standard(ID, NOW, BODY);
    let err = verifier.verify(&headers, BODY).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::ReplayStore(ReplayStoreError::Io(_))
    ));
    assert!(store.is_empty());
    let err = verifier
        .claim(&headers, BODY)
        .unwrap()
        .commit()
        .unwrap_err();
    assert!(matches!(err, ReplayStoreError::Io(_)));
    assert!(store.is_empty());
}

#[test]
fn failed_verifications_are_not_recorded() {
    let store = Arc::new(MemoryReplayStore::new(100));
    let verifier = verifier(Scheme::Standard, &[SECRET]).with_replay_store(Arc::clone(&store));
    let forged = standard_headers(
        ID,
        &NOW.to_string(),
        &sign_standard(OTHER_SECRET, ID, NOW, BODY),
    );
    assert!(verifier.verify(&forged, BODY).is_err());
    assert!(store.is_empty());
    assert!(
        verifier
            .verify(&signed_standard(ID, NOW, BODY), BODY)
            .is_ok()
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn full_replay_store_fails_closed() {
    let verifier =
        verifier(Scheme::Standard, &[SECRET]).with_replay_store(MemoryReplayStore::new(1));
    assert!(
        verifier
            .verify(&signed_standard("msg_1", NOW, BODY), BODY)
            .is_ok()
    );
    let err = verifier
        .verify(&signed_standard("msg_2", NOW, BODY), BODY)
        .unwrap_err();
    assert!(matches!(
        err,
        VerifyError::ReplayStore(ReplayStoreError::Full { capacity: 1 })
    ));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn github_and_hex_deliveries_are_remembered_by_body_for_twice_the_tolerance() {
    // See: issue 11 point 12 (the same GitHub or hex delivery was forwarded every time).
    let github_signature = github::sign(&secret("secret"), BODY).unwrap();
    let hex_signature = hex::sign(&secret("secret"), BODY).unwrap();
    let cases = [
        (Scheme::GitHub, "x-hub-signature-256", github_signature),
        (Scheme::hex("x-signature"), "x-signature", hex_signature),
    ];
    for (scheme, header, signature) in cases {
        let name = scheme.name();
        let clock = Arc::new(ManualClock::new(NOW));
        let verifier = verifier(scheme, &["secret"])
            .with_clock(Arc::clone(&clock))
            .with_replay_store(MemoryReplayStore::new(10));
        let delivery = |guid: &str| {
            vec![
                (header, signature.clone()),
                ("x-github-delivery", guid.to_owned()),
            ]
        };
        assert!(verifier.verify(&delivery("guid-1"), BODY).is_ok(), "{name}");
        // A copy is a replay, also under another (unsigned) delivery id.
        for copy in [delivery("guid-1"), delivery("guid-2")] {
            assert!(
                matches!(verifier.verify(&copy, BODY), Err(VerifyError::Replay)),
                "{name}"
            );
        }
        // Nothing signed says when a delivery was sent: it is remembered for twice the
        // tolerance after it was taken, and taken again after that.
        clock.set(NOW + 600);
        assert!(
            matches!(
                verifier.verify(&delivery("guid-1"), BODY),
                Err(VerifyError::Replay)
            ),
            "{name}"
        );
        clock.set(NOW + 601);
        assert!(verifier.verify(&delivery("guid-1"), BODY).is_ok(), "{name}");
    }
    assert!(!Scheme::GitHub.has_signed_timestamp());
    assert!(Scheme::Stripe.has_signed_timestamp());
}

// --- Stripe --------------------------------------------------------------------------------

const STRIPE_SECRET: &str = "whsec_test_secret_for_stripe";

fn stripe_headers(value: &str) -> [(&'static str, String); 1] {
    [("Stripe-Signature", value.to_owned())]
}

#[test]
fn stripe_key_is_the_whole_secret_text() {
    let mut mac = Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{NOW}.").as_bytes());
    mac.update(BODY);
    let expected = encode_hex(&mac.finalize().into_bytes());
    let header = stripe::sign(&secret(STRIPE_SECRET), NOW, BODY).unwrap();
    assert_eq!(header, format!("t={NOW},v1={expected}"));

    let verified = verifier(Scheme::Stripe, &[STRIPE_SECRET])
        .verify(&stripe_headers(&header), BODY)
        .unwrap();
    assert_eq!(verified.timestamp(), Some(NOW));
    assert_eq!(verified.message_id(), None);
    assert_eq!(verified.scheme().name(), "stripe");
}

#[test]
fn stripe_header_variants() {
    let verifier = verifier(Scheme::Stripe, &[STRIPE_SECRET]);
    let good = stripe::sign(&secret(STRIPE_SECRET), NOW, BODY).unwrap();
    let v1 = good.split_once(",v1=").unwrap().1;
    let wrong = "0".repeat(64);
    let accepted = [
        format!("t={NOW},v1={wrong},v1={v1}"),
        format!("t={NOW}, v1={v1}, v0={wrong}"),
        format!("v1={v1},t={NOW}"),
        format!("t={NOW},v1={v1},future=1,junk"),
    ];
    for header in accepted {
        let result = verifier.verify(&stripe_headers(&header), BODY);
        assert!(result.is_ok(), "{header:?}: {result:?}");
    }
    let mismatched = [
        format!("t={NOW},v0={v1}"),
        format!("t={NOW},v1={}", &v1[..63]),
        format!("t={NOW},v1={v1}0"),
        format!("t={},v1={v1}", NOW + 1),
        format!("t={NOW}"),
        format!("t={NOW},v1={}", v1.to_uppercase()),
    ];
    for header in mismatched {
        let result = verifier.verify(&stripe_headers(&header), BODY);
        assert!(
            matches!(result, Err(VerifyError::Mismatch)),
            "{header:?}: {result:?}"
        );
    }
    let malformed = [
        format!("v1={v1}"),
        format!("t={NOW},t={NOW},v1={v1}"),
        format!("t=soon,v1={v1}"),
        format!("t={NOW},{}", vec![format!("v1={v1}"); 17].join(",")),
        format!("t={NOW},{}", vec!["x"; 40].join(",")),
    ];
    for header in malformed {
        let result = verifier.verify(&stripe_headers(&header), BODY);
        assert!(
            matches!(result, Err(VerifyError::MalformedHeader { .. })),
            "{header:?}: {result:?}"
        );
    }
}

#[test]
fn stripe_future_timestamps_are_refused_unlike_stripes_libraries() {
    let verifier = verifier(Scheme::Stripe, &[STRIPE_SECRET]);
    let header = stripe::sign(&secret(STRIPE_SECRET), NOW + 301, BODY).unwrap();
    assert!(matches!(
        verifier.verify(&stripe_headers(&header), BODY),
        Err(VerifyError::TooNew { ahead_secs: 301 })
    ));
}

#[test]
fn stripe_tolerance_boundaries_in_both_directions() {
    let verifier = verifier(Scheme::Stripe, &[STRIPE_SECRET]);
    assert_tolerance_edges(|timestamp| {
        let header = stripe::sign(&secret(STRIPE_SECRET), timestamp, BODY).unwrap();
        verifier.verify(&stripe_headers(&header), BODY)
    });
}

#[test]
fn stripe_replay_with_a_subset_of_signatures_is_still_a_replay() {
    let old_secret = "whsec_old_stripe_secret";
    let verifier = verifier(Scheme::Stripe, &[old_secret, STRIPE_SECRET])
        .with_replay_store(MemoryReplayStore::new(100));
    let old = stripe::sign(&secret(old_secret), NOW, BODY).unwrap();
    let new = stripe::sign(&secret(STRIPE_SECRET), NOW, BODY).unwrap();
    let new_v1 = new.split_once(",v1=").unwrap().1;
    let both = format!("{old},v1={new_v1}");
    assert!(verifier.verify(&stripe_headers(&both), BODY).is_ok());
    for replay in [both.as_str(), old.as_str(), new.as_str()] {
        assert!(
            matches!(
                verifier.verify(&stripe_headers(replay), BODY),
                Err(VerifyError::Replay)
            ),
            "{replay}"
        );
    }
}

#[test]
fn a_standard_secret_under_stripe_rules_is_a_different_key() {
    let header = stripe::sign(&secret(SECRET), NOW, BODY).unwrap();
    // Stripe keys on the text; a verifier that base64-decoded it would be wrong.
    let key = secret(SECRET).key(KeyEncoding::Base64).unwrap();
    let decoded_mac = SignedContent::Stripe {
        timestamp_text: NOW.to_string().as_bytes(),
        timestamp: NOW,
    }
    .mac(key.as_bytes(), BODY);
    assert!(!header.contains(&encode_hex(&decoded_mac)));
}

// --- GitHub and hex ------------------------------------------------------------------------

#[test]
fn github_requires_the_sha256_prefix() {
    let verifier = verifier(Scheme::GitHub, &["It's a Secret to Everybody"]);
    let good = github::sign(&secret("It's a Secret to Everybody"), b"Hello, World!").unwrap();
    let digits = good.strip_prefix("sha256=").unwrap();
    let header = |value: &str| [("X-Hub-Signature-256", value.to_owned())];

    assert!(verifier.verify(&header(&good), b"Hello, World!").is_ok());
    for malformed in [
        digits.to_owned(),
        format!("sha1={digits}"),
        format!("SHA256={digits}"),
    ] {
        assert!(matches!(
            verifier.verify(&header(&malformed), b"Hello, World!"),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }
    let mismatched = [
        format!("sha256={}", &digits[..63]),
        format!("{good}00"),
        format!("sha256={}", digits.to_uppercase()),
        "sha256=".into(),
    ];
    for mismatched in mismatched {
        assert!(matches!(
            verifier.verify(&header(&mismatched), b"Hello, World!"),
            Err(VerifyError::Mismatch)
        ));
    }
    assert!(matches!(
        verifier.verify(&header(&good), b"Hello, World?"),
        Err(VerifyError::Mismatch)
    ));
}

#[test]
fn hex_header_names_are_checked_when_the_verifier_is_built() {
    for bad in [
        "",
        "X Signature",
        "x-signature:",
        "x-signature: sha256",
        "x-sig\r\n",
    ] {
        let err = Verifier::new(Scheme::hex(bad), &[secret("hex secret")])
            .err()
            .unwrap();
        assert_eq!(
            err,
            BuildError::InvalidHeaderName {
                name: bad.to_owned()
            }
        );
        assert!(err.to_string().contains("not a valid HTTP header name"));
    }
    // Checked before the secrets, and with a valid name the secrets are checked as before.
    assert!(matches!(
        Verifier::new(Scheme::hex("bad name"), &[]),
        Err(BuildError::InvalidHeaderName { .. })
    ));
    assert!(Verifier::new(Scheme::hex("X-Signature"), &[secret("hex secret")]).is_ok());
}

#[test]
fn hex_uses_the_configured_header_and_an_optional_prefix() {
    let verifier = verifier(Scheme::hex("X-Signature"), &["hex secret"]);
    let digits = hex::sign(&secret("hex secret"), BODY).unwrap();
    for value in [digits.clone(), format!("sha256={digits}")] {
        assert!(verifier.verify(&[("x-signature", value)], BODY).is_ok());
    }
    let err = verifier
        .verify(&[("x-hub-signature-256", digits)], BODY)
        .unwrap_err();
    assert!(matches!(err, VerifyError::MissingHeader { name } if name == "X-Signature"));
    assert_eq!(Scheme::hex("X-Signature").name(), "hex");
}
