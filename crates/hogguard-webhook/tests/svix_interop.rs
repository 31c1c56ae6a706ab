//! Svix-branded deliveries (`svix-id`, `svix-timestamp`, `svix-signature`) signed by the real
//! `svix` package verify here, through the verifier and the tower layer; deliveries signed here
//! verify in `svix`. See: issue 12 point 17.

#[path = "svix/mod.rs"]
mod svix;

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hogguard_webhook::layer::VerifyWebhookLayer;
use hogguard_webhook::{
    MemoryReplayStore, Scheme, Verified, Verifier, VerifyError, generate_secret, standard,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer as _, ServiceExt as _, service_fn};

use svix::Svix;

/// A body with more than ASCII in it, as real events have.
const BODY: &str = r#"{"event":"$pageview","properties":{"$current_url":"https://example.com/caf\u00e9","title":"Café ☕"}}"#;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn renamed(headers: &[(String, String)], from: &str, to: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.replacen(from, to, 1), value.clone()))
        .collect()
}

#[test]
fn deliveries_signed_by_svix_verify_under_either_name() {
    let svix = Svix::install();
    let secret = generate_secret().unwrap();
    let delivery = svix.sign(
        secret.expose(),
        "msg_2mWmq8Ezse3hTPGGF3zWk5pO8jM",
        unix_now(),
        BODY,
    );
    assert_eq!(delivery[0].0, "svix-id");

    let verifier = Verifier::new(Scheme::Standard, std::slice::from_ref(&secret))
        .unwrap()
        .with_replay_store(MemoryReplayStore::default());
    let verified = verifier.verify(&delivery, BODY.as_bytes()).unwrap();
    assert_eq!(
        verified.message_id(),
        Some("msg_2mWmq8Ezse3hTPGGF3zWk5pO8jM")
    );
    // The same delivery under the `webhook-` names is the same delivery: a replay.
    let unbranded = renamed(&delivery, "svix-", "webhook-");
    assert!(matches!(
        verifier.verify(&unbranded, BODY.as_bytes()),
        Err(VerifyError::Replay)
    ));
    let fresh = Verifier::new(Scheme::Standard, &[secret]).unwrap();
    assert!(fresh.verify(&unbranded, BODY.as_bytes()).is_ok());
    assert!(matches!(
        fresh.verify(&delivery, b"{}"),
        Err(VerifyError::Mismatch)
    ));

    let other_secret = generate_secret().unwrap();
    let other = Verifier::new(Scheme::Standard, &[other_secret]).unwrap();
    assert!(matches!(
        other.verify(&delivery, BODY.as_bytes()),
        Err(VerifyError::Mismatch)
    ));
}

#[test]
fn deliveries_signed_here_verify_in_svix() {
    let svix = Svix::install();
    let secret = generate_secret().unwrap();
    let (id, timestamp) = ("msg_signed_by_hogguard", unix_now());
    let signature = standard::sign(&secret, id, timestamp, BODY.as_bytes()).unwrap();
    let headers = vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), signature),
    ];
    assert_eq!(svix.verify(secret.expose(), &headers, BODY), Ok(()));
    let branded = renamed(&headers, "webhook-", "svix-");
    assert_eq!(svix.verify(secret.expose(), &branded, BODY), Ok(()));
    assert!(svix.verify(secret.expose(), &branded, "{}").is_err());
}

#[tokio::test]
async fn the_layer_takes_svix_branded_deliveries() {
    let svix = Svix::install();
    let secret = generate_secret().unwrap();
    let delivery = svix.sign(secret.expose(), "msg_through_the_layer", unix_now(), BODY);
    let verifier = Verifier::new(Scheme::Standard, &[secret])
        .unwrap()
        .with_replay_store(MemoryReplayStore::default());
    let service = VerifyWebhookLayer::new(verifier).layer(service_fn(
        |request: Request<Full<Bytes>>| async move {
            let id = request
                .extensions()
                .get::<Verified>()
                .and_then(Verified::message_id)
                .unwrap_or("no proof")
                .to_owned();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(id))))
        },
    ));
    let mut request = Request::post("/webhook");
    for (name, value) in &delivery {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"msg_through_the_layer");
}
