//! Running a gateway from a plain `main`: its own runtime, stopped by SIGTERM or Ctrl-C.

use std::future::Future;

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::server::Gateway;
use crate::stats::GatewayStats;

/// What stopped a gateway that ran until signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM: a service manager stopping it on purpose.
    Terminate,
    /// SIGINT: Ctrl-C at a terminal.
    Interrupt,
}

impl StopSignal {
    /// `terminate` or `interrupt`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StopSignal::Terminate => "terminate",
            StopSignal::Interrupt => "interrupt",
        }
    }
}

/// Runs a gateway until SIGTERM or Ctrl-C (SIGINT), then shuts it down gracefully and returns
/// its final counters and the signal that stopped it. This is what `hogguard webhook serve`
/// calls.
///
/// Builds a multi-threaded tokio runtime (one worker per core; the `TOKIO_WORKER_THREADS`
/// environment variable overrides it), installs the signal handlers, binds and serves. Events,
/// the final counters included, go to `config.events` (standard error by default).
///
/// # Errors
///
/// As [`Gateway::bind`], plus [`GatewayError::Runtime`] and [`GatewayError::Signal`] when the
/// runtime or the signal handlers cannot be set up. Once serving, it only returns counters.
pub fn run_until_signalled(
    config: GatewayConfig,
) -> Result<(GatewayStats, StopSignal), GatewayError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hogguard-gateway")
        .build()
        .map_err(GatewayError::Runtime)?;
    runtime.block_on(async {
        // Installed before binding, so a signal that arrives while starting is not lost and a
        // failure to install stops the start.
        let shutdown = stop_signal().map_err(GatewayError::Signal)?;
        let gateway = Gateway::bind(config).await?;
        let (stopped_by, stopped) = tokio::sync::oneshot::channel();
        let stats = gateway
            .serve(async move {
                let _ = stopped_by.send(shutdown.await);
            })
            .await;
        // The shutdown future completed, or the gateway would still be serving.
        let signal = stopped.await.unwrap_or(StopSignal::Terminate);
        Ok((stats, signal))
    })
}

/// Completes on the first SIGTERM or SIGINT, with which one it was; the handlers are
/// installed at once, inside a tokio runtime. For servers that stop as a gateway does.
#[cfg(unix)]
pub fn stop_signal() -> std::io::Result<impl Future<Output = StopSignal>> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => StopSignal::Terminate,
            _ = interrupt.recv() => StopSignal::Interrupt,
        }
    })
}

/// Completes on the first Ctrl-C.
#[cfg(not(unix))]
pub fn stop_signal() -> std::io::Result<impl Future<Output = StopSignal>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a handler nothing can stop the gateway gracefully; keep serving.
            std::future::pending::<()>().await;
        }
        StopSignal::Interrupt
    })
}
