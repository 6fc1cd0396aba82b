//! The OTLP exporter's HTTP client: one hyper HTTP/1.1 request per export,
//! over TCP or rustls, on the server's tokio runtime.
//!
//! Why not the exporter's reqwest client: it would build a second HTTP stack
//! (and, blocking, a second runtime) into the host for a request every few
//! seconds. The SDK's batch processor calls this from its own thread, so an
//! export never runs on, or waits for, the request path; a collector that
//! never answers costs one task held up to [`EXPORT_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::net::TcpStream;

/// The variable naming extra trusted certificates (OTLP's standard name; it
/// also serves the Application Insights exporter, which sends only https).
const CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// The longest one export may take: OTLP's default timeout.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer that is read (the SDK's own limit).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Sends export requests on a tokio runtime.
#[derive(Clone)]
pub(super) struct ExportClient {
    runtime: tokio::runtime::Handle,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportClient")
    }
}

impl ExportClient {
    /// A client running on `runtime`, trusting the webpki roots for https,
    /// and the certificates in the PEM file `OTEL_EXPORTER_OTLP_CERTIFICATE`
    /// names (a private collector's CA).
    pub(super) fn new(runtime: tokio::runtime::Handle) -> wasmtime::Result<Self> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        if let Some(path) = std::env::var_os(CERTIFICATE).filter(|path| !path.is_empty()) {
            let path = std::path::Path::new(&path);
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    wasmtime::format_err!("{CERTIFICATE}={}: {error}", path.display())
                })?;
            if certificates.is_empty() {
                wasmtime::bail!("{CERTIFICATE}={}: no certificate in it", path.display());
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| {
                    wasmtime::format_err!("{CERTIFICATE}={}: {error}", path.display())
                })?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            runtime,
            tls: Arc::new(tls),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let tls = self.tls.clone();
        let exchange = async move {
            match tokio::time::timeout(EXPORT_TIMEOUT, send(request, tls)).await {
                Ok(result) => result,
                Err(_elapsed) => Err(format!("no answer within {EXPORT_TIMEOUT:?}").into()),
            }
        };
        self.runtime.spawn(exchange).await?
    }
}

async fn send(
    mut request: Request<Bytes>,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri().clone();
    let authority = uri.authority().ok_or("the OTLP endpoint has no host")?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => {
            return Err(
                format!("the OTLP endpoint's scheme {other:?} is not http or https").into(),
            );
        }
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    request
        .headers_mut()
        .insert(http::header::HOST, authority.as_str().parse()?);
    // Origin form: scheme and authority go in the head only through a proxy.
    *request.uri_mut() = uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .parse()?;
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    if https {
        let name = rustls::pki_types::ServerName::try_from(host)?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<I>(io: I, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    // Ends when the exchange is over and `sender` is dropped.
    tokio::spawn(connection);
    let response = sender.send_request(request.map(Full::new)).await?;
    let (head, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await?
        .to_bytes();
    Ok(Response::from_parts(head, body))
}
