//! HTTP/1.1 on 127.0.0.1: the local identity's two documents, and every
//! other request through the gateway; one log line per request, with no
//! query string (it may hold a subscription key) and no header values.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::identity;

/// Largest request body taken (APIM's own limits are far larger; the
/// catalog takes none).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Serves `gateway` on `listener` until SIGINT or SIGTERM.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(respond(&gateway, request, peer).await) }
            });
            // A client that never finishes its head does not hold a task.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    tracing::info!("apim-gateway stopped");
    Ok(())
}

async fn respond(
    gateway: &Gateway,
    request: http::Request<Incoming>,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if method == http::Method::GET {
        let document = match path.as_str() {
            identity::OPENID_CONFIGURATION_PATH => {
                Some(gateway.identity().openid_configuration(&gateway.url))
            }
            identity::JWKS_PATH => Some(gateway.identity().jwks()),
            _ => None,
        };
        if let Some(document) = document {
            return json(200, document.to_string());
        }
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json(
                413,
                r#"{"statusCode":413,"message":"The request body is too large or broke off."}"#
                    .to_owned(),
            );
        }
    };
    let handled = gateway
        .handle(http::Request::from_parts(parts, body), peer.ip())
        .await;
    let status = handled.response.status().as_u16();
    tracing::info!(
        request_id = %handled.request_id,
        %method,
        path = %path,
        status,
        operation = handled.operation.as_deref().unwrap_or("-"),
        backend = handled.backend.as_deref().unwrap_or("-"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    handled.response.map(Full::new)
}

fn json(status: u16, body: String) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
