//! The host's HTTP client to the handler on `http://127.0.0.1:<port>`: the
//! headers the host adds to every invocation request, and one buffered
//! exchange per request (reference §3.1, §3.3; DefaultHttpWorkerService).

use std::time::Duration;

use bytes::Bytes;
use functions_contract::protocol;
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The Functions host version the emulator presents (the version the
/// reference was read at, as `ScriptHost.Version` prints it).
pub(crate) const HOST_VERSION: &str = "4.1037.0.0";
/// `X-Azure-Functions-HostVersion`.
pub(crate) const HOST_VERSION_HEADER: HeaderName =
    HeaderName::from_static(protocol::HOST_VERSION_HEADER);
/// `X-Azure-Functions-InvocationId`.
pub(crate) const INVOCATION_ID_HEADER: HeaderName =
    HeaderName::from_static(protocol::INVOCATION_ID_HEADER);

/// Adds the host's headers: its version, the invocation id, and
/// `Azure-Functions-Host/<version>` appended to any `User-Agent`
/// (`Headers.Add` and `UserAgent.ParseAdd` in AddHeaders).
pub(crate) fn add_host_headers(headers: &mut HeaderMap, invocation_id: &str) {
    headers.append(HOST_VERSION_HEADER, HeaderValue::from_static(HOST_VERSION));
    if let Ok(id) = HeaderValue::from_str(invocation_id) {
        headers.append(INVOCATION_ID_HEADER, id);
    }
    let product = format!("{}/{HOST_VERSION}", protocol::USER_AGENT_PRODUCT);
    let existing: Vec<String> = headers
        .get_all(USER_AGENT)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    let agent = if existing.is_empty() {
        product
    } else {
        format!("{} {product}", existing.join(" "))
    };
    if let Ok(agent) = HeaderValue::from_str(&agent) {
        headers.insert(USER_AGENT, agent);
    }
}

/// Why an exchange with the handler failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// Nothing accepted the connection: the handler is not listening (yet).
    #[error("connecting to the handler: {0}")]
    Connect(std::io::Error),
    /// Connected, but no complete response came back.
    #[error("exchanging with the handler: {0}")]
    Exchange(hyper::Error),
    /// The host's client timeout (`functionTimeout` + 1 minute) passed.
    #[error("the handler did not answer within {0:?}")]
    Timeout(Duration),
}

/// Sends `request` to `127.0.0.1:port` on a new connection and reads the
/// whole response; `timeout` bounds everything.
pub(crate) async fn send(
    port: u16,
    request: Request<Full<Bytes>>,
    timeout: Option<Duration>,
) -> Result<Response<Bytes>, SendError> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, exchange(port, request))
            .await
            .unwrap_or(Err(SendError::Timeout(limit))),
        None => exchange(port, request).await,
    }
}

async fn exchange(port: u16, request: Request<Full<Bytes>>) -> Result<Response<Bytes>, SendError> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(SendError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Exchange)?;
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(SendError::Exchange)?;
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(SendError::Exchange)?
        .to_bytes();
    // One request per connection: closing it lets the handler free the socket.
    drop(sender);
    connection.abort();
    Ok(Response::from_parts(head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_append_to_the_user_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("curl/8.5.0"));
        add_host_headers(&mut headers, "6d9f0c4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f");
        assert_eq!(
            headers[USER_AGENT],
            format!("curl/8.5.0 Azure-Functions-Host/{HOST_VERSION}").as_str()
        );
        assert_eq!(headers[HOST_VERSION_HEADER], HOST_VERSION);
        assert_eq!(
            headers[INVOCATION_ID_HEADER],
            "6d9f0c4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f"
        );

        let mut bare = HeaderMap::new();
        add_host_headers(&mut bare, "id");
        assert_eq!(
            bare[USER_AGENT],
            format!("Azure-Functions-Host/{HOST_VERSION}").as_str()
        );
    }
}
