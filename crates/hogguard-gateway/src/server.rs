//! The gateway server: accepting connections, handing each request to the deliveries service,
//! and shutting down.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::GatewayConfig;
use crate::deliveries::{Deliveries, json_response, semaphore};
use crate::error::GatewayError;
use crate::events::GatewayEvent;
use crate::forward::Forwarder;
use crate::reporter::Reporter;
use crate::stats::GatewayStats;
use crate::upstream::Upstream;

const STATS_UNAVAILABLE_BODY: &str = r#"{"error":"stats unavailable"}"#;

/// A bound, not yet serving, verifying webhook gateway.
///
/// [`Gateway::bind`] checks the configuration, opens the replay store and binds the addresses;
/// [`Gateway::serve`] then accepts connections until its shutdown future completes. Binding
/// first lets a caller learn the actual address (port 0) before serving.
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    stats_listener: Option<(TcpListener, SocketAddr)>,
    http: http1::Builder,
    shutdown_grace: Duration,
    /// One permit per connection the delivery address may have open.
    connection_slots: Arc<Semaphore>,
    max_connections: usize,
    upstream: Upstream,
    deliveries: Arc<Deliveries>,
    reporter: Arc<Reporter>,
}

impl Gateway {
    /// Checks `config`, builds the verifier (opening a file replay store), and binds the
    /// delivery address and the optional stats address.
    ///
    /// # Errors
    ///
    /// [`GatewayError::NoSecrets`] or [`GatewayError::Secret`] for missing or unusable secrets,
    /// [`GatewayError::Scheme`] for an unusable scheme, [`GatewayError::ZeroLimit`] for a limit
    /// of zero, [`GatewayError::ReplayStore`] when the store cannot be opened (another gateway
    /// holding it included), and [`GatewayError::Bind`] when an address cannot be bound.
    pub async fn bind(config: GatewayConfig) -> Result<Self, GatewayError> {
        config.check_limits()?;
        let reporter = Arc::new(Reporter::new(
            config.secrets.len(),
            Arc::clone(&config.events),
            config.rejection_log_limit,
        ));
        let forwarder = Forwarder::new(
            config.upstream.clone(),
            config.timeouts.upstream,
            config.response_limit,
        );
        let deliveries = Deliveries::new(
            &config,
            config.build_verifier()?,
            Arc::new(forwarder),
            Arc::clone(&reporter),
        );
        let (listener, local_addr) = listen(config.listen).await?;
        let stats_listener = match config.stats_listen {
            Some(address) => Some(listen(address).await?),
            None => None,
        };
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.timeouts.header_read);
        Ok(Self {
            listener,
            local_addr,
            stats_listener,
            http,
            shutdown_grace: config.timeouts.shutdown_grace,
            connection_slots: Arc::new(semaphore(config.max_connections)),
            max_connections: config.max_connections,
            upstream: config.upstream,
            deliveries: Arc::new(deliveries),
            reporter,
        })
    }

    /// Returns the address deliveries are received on (with the actual port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the address the counters are served on, if one is configured.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.stats_listener.as_ref().map(|(_, address)| *address)
    }

    /// Serves until `shutdown` completes, then shuts down gracefully and returns the final
    /// counters.
    ///
    /// While [`GatewayConfig::max_connections`] connections are open on the delivery address it
    /// accepts no more until one closes.
    ///
    /// On shutdown the gateway stops accepting connections, closes idle keep-alive connections,
    /// lets requests in flight finish for up to the shutdown grace period, then closes whatever
    /// is left. Problems while serving (a failed accept, an unreachable upstream) are reported as
    /// events, not returned.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> GatewayStats {
        let Self {
            listener,
            local_addr,
            stats_listener,
            http,
            shutdown_grace,
            connection_slots,
            max_connections,
            upstream,
            deliveries,
            reporter,
        } = self;
        reporter.record(&GatewayEvent::Listening {
            address: local_addr,
            stats_address: stats_listener.as_ref().map(|(_, address)| *address),
            upstream: &upstream,
        });
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        // The next delivery connection's slot is taken before accepting it: at the limit, new
        // connections wait in the backlog and cost the gateway nothing.
        let mut free_slot = None;
        let mut paused = false;
        loop {
            if free_slot.is_none() && !paused {
                free_slot = Arc::clone(&connection_slots).try_acquire_owned().ok();
                if free_slot.is_none() {
                    paused = true;
                    reporter.connection_limit_reached(max_connections);
                }
            }
            tokio::select! {
                () = shutdown.as_mut() => break,
                slot = Arc::clone(&connection_slots).acquire_owned(), if free_slot.is_none() => {
                    free_slot = slot.ok();
                    paused = false;
                }
                accepted = listener.accept(), if free_slot.is_some() => match accepted {
                    Ok((stream, peer)) => {
                        let slot = free_slot.take();
                        let connection = serve_deliveries(
                            &deliveries, &reporter, &http, &graceful, stream, peer, slot,
                        );
                        connections.spawn(connection);
                    }
                    Err(err) => reporter.accept_failed(&err).await,
                },
                accepted = accept_if_listening(stats_listener.as_ref()) => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_stats(&reporter, &http, &graceful, stream));
                    }
                    Err(err) => reporter.accept_failed(&err).await,
                },
                // Reap finished connections as they go, so the set holds only open ones.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        drop(stats_listener);
        while connections.try_join_next().is_some() {}
        reporter.record(&GatewayEvent::ShuttingDown {
            open_connections: connections.len(),
            grace: shutdown_grace,
        });
        if tokio::time::timeout(shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            while connections.try_join_next().is_some() {}
            reporter.record(&GatewayEvent::ConnectionsCutOff {
                count: connections.len(),
            });
            connections.abort_all();
        }
        // Let finished connections complete their accounting, and aborted ones unwind.
        while connections.join_next().await.is_some() {}
        reporter.report_held_back();
        let stats = reporter.snapshot();
        reporter.record(&GatewayEvent::Stopped { stats: &stats });
        stats
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("stats_addr", &self.stats_addr())
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

async fn listen(address: SocketAddr) -> Result<(TcpListener, SocketAddr), GatewayError> {
    let bind_error = |source| GatewayError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

async fn accept_if_listening(
    listener: Option<&(TcpListener, SocketAddr)>,
) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some((listener, _)) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Returns the task that serves one connection on the delivery address, holding `slot` (its
/// place under the connection limit) until the connection closes.
fn serve_deliveries(
    deliveries: &Arc<Deliveries>,
    reporter: &Arc<Reporter>,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
) -> impl Future<Output = ()> + Send + 'static {
    // Requests and answers are small: send each at once rather than wait for Nagle's batching.
    // Failing to set it only costs latency.
    let _ = stream.set_nodelay(true);
    let served_a_request = Arc::new(AtomicBool::new(false));
    let service = {
        let deliveries = Arc::clone(deliveries);
        let served_a_request = Arc::clone(&served_a_request);
        service_fn(move |request: Request<Incoming>| {
            served_a_request.store(true, Ordering::Relaxed);
            let deliveries = Arc::clone(&deliveries);
            async move { Ok::<_, Infallible>(deliveries.handle(peer, request).await) }
        })
    };
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    let reporter = Arc::clone(reporter);
    async move {
        let _slot = slot;
        if let Err(err) = connection.await {
            reporter.connection_failed(&err, peer, served_a_request.load(Ordering::Relaxed));
        }
    }
}

/// Returns the task that serves one connection on the stats address: every request gets the
/// counters as JSON.
fn serve_stats(
    reporter: &Arc<Reporter>,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
) -> impl Future<Output = ()> + Send + 'static {
    let reporter = Arc::clone(reporter);
    let service = service_fn(move |_request: Request<Incoming>| {
        let answer = match serde_json::to_vec(&reporter.snapshot()) {
            Ok(json) => json_response(StatusCode::OK, json),
            Err(_) => json_response(StatusCode::INTERNAL_SERVER_ERROR, STATS_UNAVAILABLE_BODY),
        };
        std::future::ready(Ok::<_, Infallible>(answer))
    });
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    async move {
        // Errors on the operator's own connection (a client gone away) are not worth a report.
        let _ = connection.await;
    }
}
