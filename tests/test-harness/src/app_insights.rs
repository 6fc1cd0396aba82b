//! A loopback Application Insights ingestion endpoint: it takes the
//! exporter's `POST /v2/track` (a gzip'd JSON array of telemetry envelopes,
//! the Breeze protocol the Application Insights SDKs speak), and keeps the
//! envelopes it decoded. Over https, as the exporter sends only https: its
//! certificate is signed by the test CA in `tls/` ([`test_ca`]).

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A running ingestion endpoint; it stops with the test's runtime.
pub struct Ingestion {
    port: u16,
    envelopes: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Ingestion {
    /// An endpoint that accepts every envelope.
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the ingestion endpoint");
        let port = listener.local_addr().expect("an address").port();
        let envelopes = Arc::new(Mutex::new(Vec::new()));
        let store = envelopes.clone();
        let acceptor = tls_acceptor();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(stream) = acceptor.accept(stream).await else {
                    continue;
                };
                let store = store.clone();
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let store = store.clone();
                    async move {
                        assert_eq!(request.uri().path(), "/v2/track");
                        let gzip = request.headers().get("content-encoding").cloned();
                        assert_eq!(gzip.as_ref().map(|v| v.as_bytes()), Some(&b"gzip"[..]));
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        let mut json = String::new();
                        flate2::read::GzDecoder::new(&body.expect("a whole body")[..])
                            .read_to_string(&mut json)
                            .expect("gzip'd text");
                        let batch: Vec<serde_json::Value> =
                            serde_json::from_str(&json).expect("a JSON array of envelopes");
                        let count = batch.len();
                        store.lock().expect("not poisoned").extend(batch);
                        let reply = serde_json::json!({
                            "itemsReceived": count, "itemsAccepted": count, "errors": []
                        });
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(bytes::Bytes::from(
                            reply.to_string(),
                        ))))
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { port, envelopes }
    }

    /// A connection string that sends here (the exporter makes its
    /// endpoint https whatever it is given), for
    /// `APPLICATIONINSIGHTS_CONNECTION_STRING`.
    pub fn connection_string(&self, instrumentation_key: &str) -> String {
        format!(
            "InstrumentationKey={instrumentation_key};IngestionEndpoint=https://127.0.0.1:{}/",
            self.port
        )
    }

    /// Waits up to 10 s until the envelopes received satisfy `done`, and
    /// returns them.
    pub async fn wait_for(
        &self,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let envelopes = self.envelopes.lock().expect("not poisoned").clone();
            if done(&envelopes) {
                return envelopes;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the ingestion endpoint did not get the telemetry expected: {:#?}",
            self.envelopes.lock().expect("not poisoned")
        );
    }
}

/// The test CA's certificate (PEM), for `OTEL_EXPORTER_OTLP_CERTIFICATE`.
pub fn test_ca() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/ca.pem")
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tls");
    let chain = CertificateDer::pem_file_iter(tls.join("server.pem"))
        .expect("tls/server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("a certificate chain");
    let key = PrivateKeyDer::from_pem_file(tls.join("server.key")).expect("tls/server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("a valid certificate and key");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}
