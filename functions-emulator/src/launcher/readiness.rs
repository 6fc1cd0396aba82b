//! The readiness poll (reference §1.3, DefaultHttpWorkerService.IsWorkerReady):
//! `GET http://127.0.0.1:<port>/` every 25 ms until any HTTP answer, for at
//! most the initialization timeout. Only a refused connection keeps the host
//! waiting; any other failure after connecting counts as ready, as it does
//! for the host (only a `SocketException` means "not yet").

use std::time::Duration;

use bytes::Bytes;
use functions_contract::protocol;
use http::Request;
use http::header::HOST;
use http_body_util::Full;
use tokio::time::Instant;

use crate::client::{self, SendError};

/// The host's poll interval.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls until the handler on `port` answers (`true`) or `timeout` passes (`false`).
pub(crate) async fn wait_until_ready(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        let probe = Request::get(protocol::READINESS_PATH)
            .header(HOST, format!("127.0.0.1:{port}"))
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
        match client::send(port, probe, Some(remaining)).await {
            Ok(_) | Err(SendError::Exchange(_)) => return true,
            Err(SendError::Timeout(_)) => return false,
            Err(SendError::Connect(_)) => {}
        }
        tokio::time::sleep(POLL_INTERVAL.min(remaining)).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    fn unused_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port")
    }

    #[tokio::test]
    async fn any_answer_is_ready_even_a_404() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a listener");
        let port = listener.local_addr().expect("an address").port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("the probe");
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer).await;
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        assert!(wait_until_ready(port, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn nobody_listening_times_out() {
        let started = std::time::Instant::now();
        assert!(!wait_until_ready(unused_port(), Duration::from_millis(200)).await);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_server_that_starts_late_is_found() {
        let port = unused_port();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("the port");
            // Accept and hang up without answering: ready, as for the host.
            let _ = listener.accept().await;
        });
        assert!(wait_until_ready(port, Duration::from_secs(5)).await);
        server.abort();
    }
}
