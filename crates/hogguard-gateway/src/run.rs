//! Running a gateway from a plain `main`: its own runtime, stopped by SIGTERM or Ctrl-C.

use std::future::Future;

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::server::Gateway;
use crate::stats::GatewayStats;

/// Runs a gateway until SIGTERM or Ctrl-C (SIGINT), then shuts it down gracefully and returns
/// its final counters. This is what `hogguard webhook serve` calls.
///
/// Builds a multi-threaded tokio runtime (one worker per core; the `TOKIO_WORKER_THREADS`
/// environment variable overrides it), installs the signal handlers, binds and serves. Events,
/// the final counters included, go to `config.events` (standard error by default).
///
/// # Errors
///
/// As [`Gateway::bind`], plus [`GatewayError::Runtime`] and [`GatewayError::Signal`] when the
/// runtime or the signal handlers cannot be set up. Once serving, it only returns counters.
pub fn run_until_signalled(config: GatewayConfig) -> Result<GatewayStats, GatewayError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hogguard-gateway")
        .build()
        .map_err(GatewayError::Runtime)?;
    runtime.block_on(async {
        // Installed before binding, so a signal that arrives while starting is not lost and a
        // failure to install stops the start.
        let shutdown = shutdown_signal()?;
        let gateway = Gateway::bind(config).await?;
        Ok(gateway.serve(shutdown).await)
    })
}

/// Completes on the first SIGTERM or SIGINT.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl Future<Output = ()>, GatewayError> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate()).map_err(GatewayError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(GatewayError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Completes on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl Future<Output = ()>, GatewayError> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a handler nothing can stop the gateway gracefully; keep serving.
            std::future::pending::<()>().await;
        }
    })
}
