//! A stand-alone gateway with a small command line, for benchmarks and manual tries; the
//! `hogguard webhook serve` command does the same through the same API.
//!
//! ```text
//! export WEBHOOK_SECRET=whsec_...
//! cargo run --release -p hogguard-gateway --example gateway -- \
//!     --listen 127.0.0.1:18081 --forward http://127.0.0.1:18080 --secret-env WEBHOOK_SECRET
//! ```
//!
//! Options: `--scheme standard|stripe|github|hex:HEADER`, `--tolerance SECONDS`,
//! `--replay-store PATH` or `--no-replay`, `--replay-capacity KEYS`, `--body-limit BYTES`,
//! `--max-requests N`, `--max-connections N`, `--stats-listen ADDRESS`.
//! Stops on SIGTERM or Ctrl-C.

use std::error::Error;
use std::time::Duration;

use hogguard_gateway::{GatewayConfig, ReplayProtection, run_until_signalled};
use hogguard_webhook::{Scheme, WebhookSecret};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut listen = None;
    let mut forward = None;
    let mut secret_vars = Vec::new();
    let mut scheme = Scheme::Standard;
    let mut tolerance = None;
    let mut replay = ReplayProtection::Memory;
    let mut replay_capacity = None;
    let mut body_limit = None;
    let mut max_requests = None;
    let mut max_connections = None;
    let mut stats_listen = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse()?),
            "--forward" => forward = Some(value()?.parse()?),
            "--secret-env" => secret_vars.extend(value()?.split(',').map(str::to_owned)),
            "--scheme" => scheme = parse_scheme(&value()?)?,
            "--tolerance" => tolerance = Some(Duration::from_secs(value()?.parse()?)),
            "--replay-store" => replay = ReplayProtection::File(value()?.into()),
            "--no-replay" => replay = ReplayProtection::Disabled,
            "--replay-capacity" => replay_capacity = Some(value()?.parse()?),
            "--body-limit" => body_limit = Some(value()?.parse()?),
            "--max-requests" => max_requests = Some(value()?.parse()?),
            "--max-connections" => max_connections = Some(value()?.parse()?),
            "--stats-listen" => stats_listen = Some(value()?.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let secrets = secret_vars
        .iter()
        .map(|var| {
            std::env::var(var)
                .map(WebhookSecret::new)
                .map_err(|_| format!("environment variable {var} is not set"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = GatewayConfig::new(
        listen.ok_or("--listen is required")?,
        forward.ok_or("--forward is required")?,
        scheme,
        secrets,
    );
    config.replay = replay;
    config.stats_listen = stats_listen;
    if let Some(tolerance) = tolerance {
        config.tolerance = tolerance;
    }
    if let Some(replay_capacity) = replay_capacity {
        config.replay_capacity = replay_capacity;
    }
    if let Some(body_limit) = body_limit {
        config.body_limit = body_limit;
    }
    if let Some(max_requests) = max_requests {
        config.max_concurrent_requests = max_requests;
    }
    if let Some(max_connections) = max_connections {
        config.max_connections = max_connections;
    }
    run_until_signalled(config)?;
    Ok(())
}

fn parse_scheme(text: &str) -> Result<Scheme, String> {
    match text {
        "standard" => Ok(Scheme::Standard),
        "stripe" => Ok(Scheme::Stripe),
        "github" => Ok(Scheme::GitHub),
        _ => match text.strip_prefix("hex:") {
            Some(header) => Ok(Scheme::hex(header)),
            None => Err(format!("unknown scheme {text}")),
        },
    }
}
