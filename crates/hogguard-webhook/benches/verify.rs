//! Throughput of the core verifier on one core: bytes per second on 64 KiB bodies (target
//! ≥ 1 GB/s) and verifications per second on 1 KiB bodies (target ≥ 500,000/s).
//!
//! Measures `Verifier::verify` end to end (header parsing, timestamp check, HMAC, constant-time
//! compare, building the proof) without a replay store, which is I/O, not verification.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hogguard_webhook::{ManualClock, Scheme, Verifier, WebhookSecret, github, standard, stripe};

const NOW: u64 = 1_614_265_330;
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // hogguard:allow (the Standard Webhooks spec's public example secret)
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"{\"event\": \"$pageview\"}"[i % 22])
        .collect()
}

fn standard_verifier() -> Verifier {
    Verifier::new(Scheme::Standard, &[WebhookSecret::new(STANDARD_SECRET)])
        .expect("valid secret")
        .with_clock(ManualClock::new(NOW))
}

fn standard_headers(body: &[u8]) -> [(&'static str, String); 3] {
    let signature =
        standard::sign(&WebhookSecret::new(STANDARD_SECRET), ID, NOW, body).expect("valid secret");
    [
        ("webhook-id", ID.to_owned()),
        ("webhook-timestamp", NOW.to_string()),
        ("webhook-signature", signature),
    ]
}

fn bench_standard(c: &mut Criterion) {
    let verifier = standard_verifier();
    let mut group = c.benchmark_group("standard_bytes");
    let body_64k = body(64 * 1024);
    let headers_64k = standard_headers(&body_64k);
    assert!(verifier.verify(&headers_64k, &body_64k).is_ok());
    group.throughput(Throughput::Bytes(body_64k.len() as u64));
    group.bench_function("64KiB", |b| {
        b.iter(|| verifier.verify(black_box(&headers_64k), black_box(&body_64k)))
    });
    group.finish();

    let mut group = c.benchmark_group("standard_verifications");
    let body = body(1024);
    let headers = standard_headers(&body);
    assert!(verifier.verify(&headers, &body).is_ok());
    group.throughput(Throughput::Elements(1));
    group.bench_function("1KiB", |b| {
        b.iter(|| verifier.verify(black_box(&headers), black_box(&body)))
    });
    // During a rotation the sender signs with two secrets and we hold two: the worst case is
    // the matching secret being second.
    let old = WebhookSecret::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); // hogguard:allow (a test value, not a credential)
    let rotating = Verifier::new(
        Scheme::Standard,
        &[old, WebhookSecret::new(STANDARD_SECRET)],
    )
    .expect("valid secrets")
    .with_clock(ManualClock::new(NOW));
    assert!(rotating.verify(&headers, &body).is_ok());
    group.bench_function("1KiB_second_of_two_secrets", |b| {
        b.iter(|| rotating.verify(black_box(&headers), black_box(&body)))
    });
    group.finish();
}

fn bench_other_schemes(c: &mut Criterion) {
    let body = body(1024);
    let mut group = c.benchmark_group("other_schemes_1KiB");
    group.throughput(Throughput::Elements(1));

    let secret = "whsec_stripe_test_secret";
    let stripe_verifier = Verifier::new(Scheme::Stripe, &[WebhookSecret::new(secret)])
        .expect("valid secret")
        .with_clock(ManualClock::new(NOW));
    let stripe_headers = [(
        "stripe-signature",
        stripe::sign(&WebhookSecret::new(secret), NOW, &body).expect("valid secret"),
    )];
    assert!(stripe_verifier.verify(&stripe_headers, &body).is_ok());
    group.bench_function("stripe", |b| {
        b.iter(|| stripe_verifier.verify(black_box(&stripe_headers), black_box(&body)))
    });

    let github_verifier =
        Verifier::new(Scheme::GitHub, &[WebhookSecret::new(secret)]).expect("valid secret");
    let github_headers = [(
        "x-hub-signature-256",
        github::sign(&WebhookSecret::new(secret), &body).expect("valid secret"),
    )];
    assert!(github_verifier.verify(&github_headers, &body).is_ok());
    group.bench_function("github", |b| {
        b.iter(|| github_verifier.verify(black_box(&github_headers), black_box(&body)))
    });
    group.finish();
}

criterion_group!(benches, bench_standard, bench_other_schemes);
criterion_main!(benches);
