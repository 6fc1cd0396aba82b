//! The wasi:http glue: an incoming request becomes an [`api::Request`], the
//! [`api::Response`] becomes an outgoing response, and the log line goes to
//! stderr. No business logic lives here.

use std::io::Write as _;

use crate::api;

wit_bindgen::generate!({
    path: "../wit",
    world: "azure-wasm:backend/http-backend",
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// `blocking-write-and-flush` accepts at most 4096 bytes a call.
const WRITE_CHUNK: usize = 4096;

struct Catalog;

impl Guest for Catalog {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = request.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .into_iter()
                .next()
                .map(|value| String::from_utf8_lossy(&value).into_owned())
        };
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let response = api::handle_http(
            &method_name(&request.method()),
            &path_with_query,
            header,
            || wasi::random::random::get_random_bytes(16),
        );
        // One write, so the host receives the line whole.
        let _ = std::io::stderr().write_all(&response.log_line);
        send(response, response_out);
    }
}

fn send(response: api::Response, response_out: ResponseOutparam) {
    let content_length = response.content_length();
    let mut entries: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into_bytes()))
        .collect();
    if let Some(length) = content_length {
        entries.push(("content-length".to_owned(), length.to_string().into_bytes()));
    }
    let fields = Fields::from_list(&entries).expect("the API only produces valid headers");
    let outgoing = OutgoingResponse::new(fields);
    outgoing
        .set_status_code(response.status)
        .expect("the API only produces valid statuses");
    let body = outgoing.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(outgoing));

    let stream = body.write().expect("the stream is taken once");
    for chunk in response.body.chunks(WRITE_CHUNK) {
        // A failed write means the client went away: nothing left to do.
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(name) => name,
    }
    .to_owned()
}

export!(Catalog);
