//! The gateway's one HTTP client: to backends and to the identity
//! provider's OpenID configuration. Plain HTTP only: locally every backend
//! and the identity are on loopback; Azure's are HTTPS, which a deployed
//! APIM reaches, not this gateway.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Largest response body read from a backend; past it the response is a
/// failed connection. Bodies are held whole: policies and the cache read
/// them.
const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// A pooled HTTP/1.1 client.
#[derive(Clone)]
pub struct HttpClient(Client<HttpConnector, Full<Bytes>>);

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection, or it broke before a whole response came
    /// (LastError.Reason BackendConnectionFailure).
    #[error("{0}")]
    Connection(String),
    /// No whole response within the timeout (LastError.Reason Timeout).
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

impl HttpClient {
    /// A new client.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        HttpClient(Client::builder(TokioExecutor::new()).build(connector))
    }

    /// Sends `request` and reads the whole response within `timeout`.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, SendError> {
        let exchange = async {
            let response = self
                .0
                .request(request)
                .await
                .map_err(|e| SendError::Connection(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_RESPONSE_BODY)
                .collect()
                .await
                .map_err(|e| SendError::Connection(error_chain(&*e)))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| SendError::Timeout(timeout))?
    }

    /// GETs `url` and parses its JSON body.
    pub async fn get_json(&self, url: &str) -> anyhow::Result<serde_json::Value> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))?;
        let response = self.send(request, Duration::from_secs(10)).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {url}: status {}",
            response.status()
        );
        Ok(serde_json::from_slice(response.body())?)
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
