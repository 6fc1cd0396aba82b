//! Bindings and helpers shared by the test guests. Each `src/bin/*.rs` is one
//! component, built for `wasm32-wasip2` by the test crate's build script.

#![deny(missing_docs, unreachable_pub)]

#[expect(missing_docs, reason = "bindgen-generated code")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "azure-wasm:backend/http-backend",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "test_guests",
    });
}

pub use bindings::*;

pub use exports::wasi::http::incoming_handler::Guest;
pub use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam, Scheme,
};

/// Sends a complete response.
pub fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    respond_with_headers(out, status, content_type, &[], body);
}

/// Sends a complete response with `extra` headers.
pub fn respond_with_headers(
    out: ResponseOutparam,
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: &[u8],
) {
    let mut fields = vec![
        ("content-type".to_owned(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ),
    ];
    fields.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec())),
    );
    let headers = Fields::from_list(&fields).expect("valid headers");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing_body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing_body.write().expect("the stream is taken once");
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .expect("the client reads the body");
    }
    drop(stream);
    OutgoingBody::finish(outgoing_body, None).expect("the body finishes");
}

/// Requests this instance has served.
static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Counts one more request for this instance and returns the count, this
/// request included: 1 on every request unless the host reuses instances.
pub fn count_request() -> u32 {
    SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// Every request header as `(name, value)`, values decoded lossily.
pub fn headers(request: &IncomingRequest) -> Vec<(String, String)> {
    request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}
