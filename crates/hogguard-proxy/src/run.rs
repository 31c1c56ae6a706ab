//! Running a proxy as a program does: until SIGTERM or Ctrl-C, reloading on SIGHUP.

use std::future::Future;
use std::sync::Arc;

use crate::audit::AuditSink;
use crate::config::{ProxyConfig, SnapshotSource};
use crate::server::{Proxy, ProxyError, ReloadHandle};
use crate::stats::ProxyStats;

/// Binds a proxy and serves it on a runtime of its own until SIGTERM or Ctrl-C, reloading on
/// SIGHUP: what a command-line program calls.
pub fn serve_until_signalled(
    config: ProxyConfig,
    source: Arc<dyn SnapshotSource>,
    audit: Arc<dyn AuditSink>,
) -> Result<ProxyStats, ProxyError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ProxyError::Runtime)?;
    runtime.block_on(async {
        let proxy = Proxy::bind(config, source, audit).await?;
        run_until_signalled(proxy)
            .await
            .map_err(ProxyError::Runtime)
    })
}

/// Serves until SIGTERM or SIGINT (Ctrl-C), reading clients and credentials again on each
/// SIGHUP, and returns the final counters.
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub async fn run_until_signalled(proxy: Proxy) -> std::io::Result<ProxyStats> {
    let reload = proxy.reload_handle();
    let stop = hogguard_gateway::stop_signal()?;
    let hangups = hangups(reload)?;
    let serving = proxy.serve(async {
        stop.await;
    });
    tokio::pin!(serving);
    tokio::select! {
        stats = &mut serving => Ok(stats),
        // Never ends while the proxy serves: it loops over hangups.
        () = hangups => Ok(serving.await),
    }
}

#[cfg(unix)]
fn hangups(reload: ReloadHandle) -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(async move {
        while hangup.recv().await.is_some() {
            reload.reload();
        }
    })
}

#[cfg(not(unix))]
fn hangups(_reload: ReloadHandle) -> std::io::Result<impl Future<Output = ()>> {
    Ok(std::future::pending())
}
