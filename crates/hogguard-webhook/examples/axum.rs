//! An axum server that accepts only verified Standard Webhooks deliveries on `POST /webhook`.
//!
//! Run with `WEBHOOK_SECRET=whsec_… cargo run -p hogguard-webhook --features tower --example axum`
//! and send a delivery signed with the same secret (for example from PostHog's HTTP Webhook
//! destination with a signing secret). Corners cut: the replay store is in memory, so a restart
//! forgets it (use `FileReplayStore` in production), and rejections are logged to stderr.

use axum::body::Bytes;
use axum::routing::post;
use axum::{Extension, Router};
use hogguard_webhook::layer::VerifyWebhookLayer;
use hogguard_webhook::{MemoryReplayStore, Scheme, Verified, Verifier, WebhookSecret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = WebhookSecret::new(
        std::env::var("WEBHOOK_SECRET").map_err(|_| "set WEBHOOK_SECRET to a whsec_ secret")?,
    );
    let verifier =
        Verifier::new(Scheme::Standard, &[secret])?.with_replay_store(MemoryReplayStore::default());

    let app = Router::new().route("/webhook", post(receive)).layer(
        VerifyWebhookLayer::new(verifier)
            .with_body_limit(256 * 1024)
            .on_failure(|err| eprintln!("rejected webhook delivery: {err}")),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    eprintln!("listening on http://{}/webhook", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Runs only for verified deliveries: the layer answers everything else with 401.
async fn receive(Extension(verified): Extension<Verified>, body: Bytes) -> &'static str {
    eprintln!(
        "verified delivery {} ({} bytes)",
        verified.message_id().unwrap_or("without id"),
        body.len()
    );
    "ok"
}
