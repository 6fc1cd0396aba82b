//! The readiness poll (azure-functions-host at 89dc438:
//! `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs` `IsWorkerReady`,
//! `src/WebJobs.Script/Utility.cs` `DelayAsync`): `GET http://127.0.0.1:<port>/`,
//! then a 25 ms pause, again, until any HTTP answer. Only the pauses count
//! toward the initialization timeout, so a handler slow to refuse or to
//! answer is given longer than that in wall-clock time. A refused
//! connection keeps the host waiting; any other failure after connecting
//! counts as ready, as for the host (only a `SocketException` means "not
//! yet"); a ping that outlasts the client's timeout fails the start.

use std::time::Duration;

use bytes::Bytes;
use functions_contract::protocol;
use http::Request;
use http::header::HOST;

use crate::client::{Framing, HostClient, SendError};

/// The host's poll interval.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// What one readiness ping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ping {
    /// Nothing listens yet.
    NotListening,
    /// The handler answered (or connected and then failed, which counts too).
    Ready,
    /// The ping failed in a way the host does not catch: the start fails.
    Failed(String),
}

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    /// `Initializing HttpWorker timed out.`
    TimedOut,
    Failed(String),
}

/// Polls the handler on `port` with `client` until it is ready.
pub(crate) async fn wait_until_ready(
    port: u16,
    timeout: Duration,
    client: HostClient,
) -> Readiness {
    poll(timeout, || async move {
        let probe = Request::get(protocol::READINESS_PATH)
            .header(HOST, format!("127.0.0.1:{port}"))
            .body(Bytes::new())
            .unwrap_or_default();
        match client.send(port, probe, Framing::Length).await {
            Ok(_) | Err(SendError::Exchange(_)) | Err(SendError::Redirect(_)) => Ping::Ready,
            Err(SendError::Connect(_)) => Ping::NotListening,
            Err(error @ SendError::Timeout(_)) => Ping::Failed(error.to_string()),
        }
    })
    .await
}

/// `Utility.DelayAsync(timeout, 25 ms, condition)`: ping; while not ready
/// and the pauses so far are under `timeout`, pause and ping again.
pub(crate) async fn poll<F, Fut>(timeout: Duration, mut ping: F) -> Readiness
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Ping>,
{
    let mut waited = Duration::ZERO;
    loop {
        match ping().await {
            Ping::Ready => return Readiness::Ready,
            Ping::Failed(why) => return Readiness::Failed(why),
            Ping::NotListening if waited >= timeout => return Readiness::TimedOut,
            Ping::NotListening => {}
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        waited += POLL_INTERVAL;
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
        assert_eq!(
            wait_until_ready(port, Duration::from_secs(5), client()).await,
            Readiness::Ready
        );
    }

    fn client() -> HostClient {
        HostClient {
            follow_redirects: false,
            timeout: Some(Duration::from_secs(5)),
        }
    }

    #[tokio::test]
    async fn nobody_listening_times_out() {
        assert_eq!(
            wait_until_ready(unused_port(), Duration::from_millis(200), client()).await,
            Readiness::TimedOut
        );
    }

    #[tokio::test]
    async fn only_the_pauses_count_toward_the_timeout() {
        // Pings that each take 50 ms: a 100 ms timeout is four pauses, so
        // five pings and about 350 ms, not the two pings wall-clock time would allow.
        let pings = std::sync::atomic::AtomicUsize::new(0);
        let readiness = poll(Duration::from_millis(100), || async {
            pings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ping::NotListening
        })
        .await;
        assert_eq!(readiness, Readiness::TimedOut);
        assert_eq!(pings.into_inner(), 5);
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
        assert_eq!(
            wait_until_ready(port, Duration::from_secs(5), client()).await,
            Readiness::Ready
        );
        server.abort();
    }
}
