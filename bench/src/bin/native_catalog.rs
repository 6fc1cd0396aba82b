//! The benchmark's ceiling: the catalog's business logic (`catalog::api`, the
//! very code the component runs) compiled natively behind hyper, doing per
//! request what the component's wasi:http glue (`guest/src/component.rs`)
//! does: the same request mapping, the correlation id from the header or a
//! new random one, the same headers and body, and the log line written to
//! stderr in one write. No sandbox, no instance, no host in between.
//!
//! `native-catalog --listen 127.0.0.1:8081`

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use catalog::api;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

/// Serves the catalog API natively (the benchmark's ceiling).
#[derive(Parser)]
#[command(version)]
struct Options {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

/// The same backlog as wasm-handler, so bursts of connections are treated alike.
const LISTEN_BACKLOG: u32 = 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let socket = if options.listen.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(options.listen)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    writeln!(
        std::io::stdout().lock(),
        "native-catalog listening on http://{}",
        listener.local_addr()?
    )?;

    loop {
        let (stream, _) = listener.accept().await?;
        // Small responses go out at once instead of waiting for Nagle's 40 ms (as in wasm-handler).
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

/// What `guest/src/component.rs` does for one request, natively.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let path_with_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned());
    let path = path_with_query
        .split_once('?')
        .map_or(path_with_query.as_str(), |(path, _)| path);
    let method = request.method().as_str().to_owned();
    let correlation_id = header(api::CORRELATION_ID_HEADER).unwrap_or_else(generate_correlation_id);
    let routed_by = header(api::GATEWAY_HEADER);
    let cache_status = header(api::CACHE_STATUS_HEADER);
    let if_none_match = header("if-none-match");

    let response = api::handle(&api::Request {
        method: &method,
        path,
        correlation_id: &correlation_id,
        routed_by: routed_by.as_deref(),
        cache_status: cache_status.as_deref(),
        if_none_match: if_none_match.as_deref(),
    });
    // One write, as the component does, so concurrent lines never interleave.
    let _ = std::io::stderr().write_all(&response.log_line);

    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(*name, value);
    }
    if response.status != 304 {
        builder = builder.header("content-length", response.body.len());
    }
    Ok(builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| {
            // The API only produces valid statuses and headers; this is unreachable in practice.
            let mut failed = Response::new(Full::new(Bytes::new()));
            *failed.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            failed
        }))
}

/// 16 random bytes as 32 hex digits, as the component makes them.
fn generate_correlation_id() -> String {
    (0..16)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}
