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
        .map_or("/", |path| path.as_str());
    let response = api::handle_http(request.method().as_str(), path_with_query, header, || {
        (0..16).map(|_| fastrand::u8(..)).collect()
    });
    // One write, as the component does, so concurrent lines never interleave.
    let _ = std::io::stderr().write_all(&response.log_line);

    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(*name, value);
    }
    if let Some(length) = response.content_length() {
        builder = builder.header("content-length", length);
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
