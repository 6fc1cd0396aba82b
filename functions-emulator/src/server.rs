//! The listener on 127.0.0.1 (port 7071 by default), one task per
//! connection, and graceful shutdown: stop accepting, let open requests
//! finish for a bounded time.
//!
//! Connections get Kestrel's default limits, which the Functions host keeps
//! (`src/WebJobs.Script.WebHost/Program.cs` sets only `MaxRequestBodySize`):
//! a head must arrive within `RequestHeadersTimeout` (30 s), hold at most
//! 100 fields (`MaxRequestHeaderCount`, also hyper's default) and fit a
//! request line of 8 KiB and 32 KiB of fields (`MaxRequestLineSize`,
//! `MaxRequestHeadersTotalSize`); past these the answer is a bare 4xx, as
//! Kestrel's is.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::host_log;
use crate::lifecycle::stop_requested;
use crate::pipeline::Pipeline;

/// How long open connections may take to finish after shutdown starts: long
/// enough for the handler's own drain ([`crate::launcher::STOP_GRACE`]).
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(20);

/// Kestrel's `MaxRequestLineSize` plus `MaxRequestHeadersTotalSize`: the
/// most of a head hyper buffers.
const MAX_HEAD_BYTES: usize = (8 + 32) << 10;

/// Binds `127.0.0.1:port` (`0`: a free port).
pub(crate) fn bind(port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let socket = TcpSocket::new_v4()?;
    // A restarted emulator can take its port back at once from TIME_WAIT sockets.
    socket.set_reuseaddr(true)?;
    socket
        .bind(address)
        .with_context(|| format!("binding {address} (is another host running? use --port)"))?;
    socket
        .listen(1024)
        .with_context(|| format!("listening on {address}"))
}

/// Serves `pipeline` until `shutdown` turns true, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    header_read_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let connections = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    host_log::warn(format!("Accepting a connection failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop_requested(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let pipeline = pipeline.clone();
        let service = service_fn(move |request| {
            let pipeline = pipeline.clone();
            async move { Ok::<_, Infallible>(pipeline.handle(request).await) }
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that hangs up mid-request is its own business.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_GRACE, connections.shutdown())
        .await
        .is_err()
    {
        host_log::warn("Open connections did not finish in time; closing them.");
    }
}
