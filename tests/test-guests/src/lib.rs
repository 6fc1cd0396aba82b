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
    let headers = Fields::from_list(&[
        ("content-type".to_owned(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .expect("valid headers");
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

/// Every request header as `(name, value)`, values decoded lossily.
pub fn headers(request: &IncomingRequest) -> Vec<(String, String)> {
    request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}
