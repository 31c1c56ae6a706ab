//! `hogguard webhook secret|sign|verify`.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use hogguard_webhook::{
    BuildError, ManualClock, Scheme, Verifier, WebhookSecret, github, hex, standard, stripe,
};

use hogguard_gateway::StopSignal;
use hogguard_gateway::{GatewayConfig, GatewayError, ReplayProtection};

use crate::Status;
use crate::audit::Recorder;
use crate::cli::{SchemeArgs, SchemeName, ServeArgs, SignArgs, VerifyArgs, WebhookCommand};
use crate::printer::Printer;
use crate::settings::{Scope, Settings};

pub(crate) fn run(
    command: WebhookCommand,
    settings: &Settings,
    printer: &Printer,
) -> Result<Status> {
    match command {
        WebhookCommand::Secret => {
            let secret =
                hogguard_webhook::generate_secret().context("the OS random source failed")?;
            // The one place a secret is printed: the user asked for a new one.
            printer.out(&format!("{}\n", secret.expose()))?;
            Ok(Status::Clean)
        }
        WebhookCommand::Sign(args) => sign(&args, settings, printer),
        WebhookCommand::Verify(args) => verify(&args, settings, printer),
        WebhookCommand::Serve(args) => serve(args, settings, printer),
    }
}

fn serve(args: ServeArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let secrets = args
        .secret_env
        .iter()
        .map(|var| secret_from(settings, var))
        .collect::<Result<Vec<_>>>()?;
    // The URL itself is not repeated: it may carry credentials.
    let upstream = args
        .forward
        .parse::<hogguard_gateway::Upstream>()
        .context("--forward is not a usable upstream URL")?;
    let mut gateway = GatewayConfig::new(args.listen, upstream, scheme(&args.scheme), secrets);
    gateway.tolerance = Duration::from_secs(args.tolerance);
    gateway.replay = match (&args.replay_store, args.no_replay) {
        (_, true) => ReplayProtection::Disabled,
        (Some(path), false) => ReplayProtection::File(path.clone()),
        (None, false) => ReplayProtection::Memory,
    };
    gateway.body_limit = args.body_limit;
    gateway.timeouts.header_read = Duration::from_secs(args.header_timeout);
    gateway.timeouts.body_read = Duration::from_secs(args.body_timeout);
    gateway.timeouts.upstream = Duration::from_secs(args.upstream_timeout);
    gateway.stats_listen = args.stats_listen;
    gateway.replay_capacity = args.replay_capacity;
    gateway.max_concurrent_requests = args.max_requests;
    gateway.max_connections = args.max_connections;
    gateway.rejection_log_limit = args.rejection_log_limit;
    announce_replay_window(&gateway, printer);
    let (stats, stopped_by) =
        hogguard_gateway::run_until_signalled(gateway).map_err(|e| match e {
            GatewayError::Secret { index, source } => {
                unusable_secret(source, &args.secret_env[index])
            }
            other => anyhow::Error::new(other),
        })?;
    // The gateway summarises its run in the audit log: what it let through and why it refused.
    let recorder = Recorder::open(settings, false, printer)?;
    recorder.record(
        "webhook.gateway_stopped",
        &args.listen.to_string(),
        true,
        &[
            ("forwarded", stats.forwarded.into()),
            ("rejected", stats.total_rejected().into()),
            ("rejected_by_reason", serde_json::to_value(&stats.rejected)?),
            (
                "upstream_errors",
                (stats.upstream_errors + stats.upstream_timeouts).into(),
            ),
            (
                "connection_limit_pauses",
                stats.connection_limit_pauses.into(),
            ),
            ("stopped_by", stopped_by.as_str().into()),
        ],
    )?;
    recorder.close()?;
    // SIGTERM is a service manager's stop, and a clean one; Ctrl-C is an interrupt.
    Ok(match stopped_by {
        StopSignal::Terminate => Status::Clean,
        StopSignal::Interrupt => Status::Interrupted,
    })
}

/// Warns when the gateway cannot refuse every replay: its protection is off, or the scheme
/// signs no time, so a delivery is remembered only for a window.
fn announce_replay_window(gateway: &GatewayConfig, printer: &Printer) {
    if gateway.replay == ReplayProtection::Disabled {
        printer.warning(
            "replay protection is off (--no-replay): every copy of a delivery is forwarded",
        );
    } else if !gateway.scheme.has_signed_timestamp() {
        printer.warning(&format!(
            "scheme {} signs no time or id: each delivery is remembered by its body for {} s \
             (twice --tolerance) and refused as a replay within that time; a copy sent later is \
             forwarded again",
            gateway.scheme.name(),
            gateway.tolerance.as_secs().saturating_mul(2)
        ));
    }
}

fn scheme(args: &SchemeArgs) -> Scheme {
    match args.scheme {
        SchemeName::Standard => Scheme::Standard,
        SchemeName::Hex => Scheme::hex(args.signature_header.clone()),
        SchemeName::Github => Scheme::GitHub,
        SchemeName::Stripe => Scheme::Stripe,
    }
}

/// The error for a secret in `var` that the scheme cannot use.
fn unusable_secret(err: hogguard_webhook::SecretError, var: &str) -> anyhow::Error {
    anyhow::Error::new(err).context(format!("the secret in {var} is not usable"))
}

/// The secret held by the variable `var` (the process environment, then the configured env
/// files).
fn secret_from(settings: &Settings, var: &str) -> Result<WebhookSecret> {
    let secret = settings.require_variable(var, Scope::AnyEnvironment, "--secret-env names it")?;
    Ok(WebhookSecret::new(secret.expose()))
}

fn read_body(path: &Path) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_end(&mut body)
            .context("cannot read standard input")?;
    } else {
        body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(body)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sign(args: &SignArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let secret = secret_from(settings, &args.secret_env)?;
    let body = read_body(&args.body)?;
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    let invalid = |e| unusable_secret(e, &args.secret_env);
    let headers: Vec<(String, String)> = match scheme(&args.scheme) {
        Scheme::Standard => {
            let id = match &args.id {
                Some(id) => id.clone(),
                None => new_message_id()?,
            };
            let signature =
                standard::sign(&secret, &id, timestamp, &body).map_err(|e| match e {
                    standard::SignError::Secret(e) => invalid(e),
                    other => anyhow::Error::new(other)
                        .context(format!("--id {id:?} is not a usable message id")),
                })?;
            vec![
                (standard::ID_HEADER.to_owned(), id),
                (standard::TIMESTAMP_HEADER.to_owned(), timestamp.to_string()),
                (standard::SIGNATURE_HEADER.to_owned(), signature),
            ]
        }
        Scheme::Stripe => vec![(
            stripe::SIGNATURE_HEADER.to_owned(),
            stripe::sign(&secret, timestamp, &body).map_err(invalid)?,
        )],
        Scheme::GitHub => vec![(
            github::SIGNATURE_HEADER.to_owned(),
            github::sign(&secret, &body).map_err(invalid)?,
        )],
        Scheme::Hex { header } => vec![(header, hex::sign(&secret, &body).map_err(invalid)?)],
        _ => bail!("this scheme cannot sign"),
    };
    let text: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    printer.out(&text)?;
    Ok(Status::Clean)
}

/// A Standard Webhooks message id: `msg_` and 16 random bytes in hex.
fn new_message_id() -> Result<String> {
    let secret = hogguard_webhook::generate_secret().context("the OS random source failed")?;
    // The id needs randomness, not secrecy: a hash of a throwaway secret gives both.
    let digest = hogguard_secret::fingerprint(secret.expose());
    Ok(format!("msg_{}", &digest[..32]))
}

fn verify(args: &VerifyArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let secrets = args
        .secret_env
        .iter()
        .map(|var| secret_from(settings, var))
        .collect::<Result<Vec<_>>>()?;
    let mut headers = Vec::with_capacity(args.headers.len());
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("--header {header:?} is not `name: value`");
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let body = read_body(&args.body)?;
    let mut verifier = Verifier::new(scheme(&args.scheme), &secrets)
        .map_err(|e| match e {
            BuildError::Secret(e) => unusable_secret(e, &args.secret_env.join(" or ")),
            other => anyhow::Error::new(other).context("--signature-header is not usable"),
        })?
        .with_tolerance(Duration::from_secs(args.tolerance));
    if let Some(now) = args.now {
        verifier = verifier.with_clock(ManualClock::new(now));
    }
    match verifier.verify(&headers, &body) {
        Ok(verified) => {
            let mut text = format!("valid {} delivery", verified.scheme().name());
            if let Some(id) = verified.message_id() {
                text.push_str(&format!(" {id}"));
            }
            if secrets.len() > 1 {
                text.push_str(&format!(
                    ", signed with {}",
                    args.secret_env[verified.secret_index()]
                ));
            }
            printer.note(&text);
            Ok(Status::Clean)
        }
        Err(e) => {
            printer.error(&anyhow::Error::from(e).context("invalid delivery"));
            Ok(Status::Findings)
        }
    }
}
