//! A loopback HTTP server that counts the requests it gets and keeps their
//! headers: what a guest with an outgoing-HTTP grant calls.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A running upstream server; it stops with the test's runtime.
pub struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
    headers: Arc<Mutex<Vec<hyper::HeaderMap>>>,
    uris: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    /// Starts a server on a free loopback port that answers `204` to everything.
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the upstream");
        let port = listener.local_addr().expect("an address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let headers = Arc::new(Mutex::new(Vec::new()));
        let kept = headers.clone();
        let uris = Arc::new(Mutex::new(Vec::new()));
        let kept_uris = uris.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let kept = kept.clone();
                let kept_uris = kept_uris.clone();
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    kept.lock()
                        .expect("not poisoned")
                        .push(request.headers().clone());
                    kept_uris
                        .lock()
                        .expect("not poisoned")
                        .push(request.uri().to_string());
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self {
            port,
            hits,
            headers,
            uris,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The headers of each request received, in order.
    pub fn headers(&self) -> Vec<hyper::HeaderMap> {
        self.headers.lock().expect("not poisoned").clone()
    }

    /// The request target (path and query) of each request received, in order.
    pub fn uris(&self) -> Vec<String> {
        self.uris.lock().expect("not poisoned").clone()
    }

    /// Requests it has received.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
