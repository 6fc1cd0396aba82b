//! Bindings and helpers shared by the WASI 0.3 test guests. Each
//! `src/bin/*.rs` is one component exporting `wasi:http/handler@0.3.0`, built
//! with wit-bindgen's async exports for `wasm32-wasip2`.

#![deny(missing_docs, unreachable_pub)]

#[expect(missing_docs, reason = "bindgen-generated code")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit-p3",
        world: "azure-wasm:backend/http-service",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "test_guests_p3",
    });
}

pub use bindings::*;

pub use exports::wasi::http::handler::Guest;
pub use wasi::http::types::{ErrorCode, Fields, Request, Response, Scheme};

/// A response whose body `body` is written by a task that goes on after
/// `handle` has returned, as a 0.3 guest streams.
pub fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Result<Response, ErrorCode> {
    let (response, writer) = response_head(status, content_type, body.len())?;
    wit_bindgen::spawn_local(async move {
        let mut writer = writer;
        let _ = writer.write_all(body).await;
    });
    Ok(response)
}

/// A response head with `content-length: length`, and the writer of its body.
pub fn response_head(
    status: u16,
    content_type: &str,
    length: usize,
) -> Result<(Response, wit_bindgen::StreamWriter<u8>), ErrorCode> {
    response_head_with(status, content_type, length, Vec::new())
}

/// [`response_head`] with `extra` headers.
fn response_head_with(
    status: u16,
    content_type: &str,
    length: usize,
    mut extra: Vec<(String, Vec<u8>)>,
) -> Result<(Response, wit_bindgen::StreamWriter<u8>), ErrorCode> {
    extra.extend([
        ("content-type".to_owned(), content_type.as_bytes().to_vec()),
        ("content-length".to_owned(), length.to_string().into_bytes()),
    ]);
    let headers = Fields::from_list(&extra)
        .map_err(|_| ErrorCode::InternalError(Some("invalid headers".to_owned())))?;
    let (writer, reader) = wit_stream::new();
    // No trailers: the writer's default answer when it is dropped unwritten.
    let (_trailers, trailers) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(reader), trailers);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some("invalid status".to_owned())))?;
    Ok((response, writer))
}

/// Requests this instance has served, this one included: 1 on every request
/// unless the host reuses instances.
pub fn count_request() -> u32 {
    static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// Answers `body` with `x-instance-requests`: a version the swap tests tell
/// apart, and how many requests its instance has served.
pub fn answer_version(body: &str) -> Result<Response, ErrorCode> {
    let served = count_request().to_string();
    let (response, writer) = response_head_with(
        200,
        "text/plain",
        body.len(),
        vec![("x-instance-requests".to_owned(), served.into_bytes())],
    )?;
    let body = body.as_bytes().to_vec();
    wit_bindgen::spawn_local(async move {
        let mut writer = writer;
        let _ = writer.write_all(body).await;
    });
    Ok(response)
}
