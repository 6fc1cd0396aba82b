//! The HTTP server: the listener, one task per connection, and graceful
//! shutdown (stop accepting, let in-flight requests finish within a grace
//! period, then return so the process exits 0 and the Functions host does not
//! restart it).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use wasmtime::error::Context as _;

use crate::handler::Handler;
use crate::limits::{Limits, MAX_URI_BYTES};
use crate::wire::ProblemsForUnparsed;

/// Pending connections the kernel queues for us. `wasmtime serve` uses 100,
/// which drops connections under bursts from many clients.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket on `address`.
pub(crate) fn bind(address: SocketAddr) -> wasmtime::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    // Lets a restarted handler take the port back at once from TIME_WAIT sockets.
    socket.set_reuseaddr(true)?;
    socket
        .bind(address)
        .with_context(|| format!("binding {address}"))?;
    socket
        .listen(LISTEN_BACKLOG)
        .with_context(|| format!("listening on {address}"))
}

/// Serves `handler` on `listener` until `shutdown` resolves, then drains open
/// connections for at most `grace`.
pub(crate) async fn run(
    listener: TcpListener,
    handler: Arc<Handler>,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> wasmtime::Result<()> {
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        // A client must send its head in time (slowloris guard).
        .header_read_timeout(limits.header_read_timeout)
        // Room for heads somewhat over the limits, so that the handler
        // answers them with its own detail; hyper refuses far larger ones
        // (its answer is rewritten as problem+json, see `wire`).
        .max_buf_size((4 * (limits.max_header_bytes + MAX_URI_BYTES)).max(8192));
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses go out at once instead of waiting for Nagle's 40 ms.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(request).await) }
        });
        let stream = ProblemsForUnparsed::new(stream, limits.max_header_bytes);
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "Connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!(
        grace_seconds = grace.as_secs_f64(),
        "Shutting down: draining open connections"
    );
    tokio::select! {
        () = connections.shutdown() => tracing::info!("All connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("Grace period over; closing the remaining connections"),
    }
    Ok(())
}

/// Resolves on SIGTERM (what Azure and container runtimes send) or SIGINT.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::warn!(%error, "SIGTERM cannot be handled; only SIGINT stops the server gracefully");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        tracing::info!("Ctrl-C received");
    }
}
