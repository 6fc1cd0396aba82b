//! The catalog as a WASI 0.3 component: the same business logic as the 0.2
//! one (`catalog::api`), behind a second thin glue built with wit-bindgen's
//! async exports. A request becomes an [`api::Request`], the
//! [`api::Response`] a 0.3 response whose body a task writes after `handle`
//! has returned, and the log line goes to stderr. No business logic lives here.

#![deny(missing_docs, unreachable_pub)]

#[cfg(target_arch = "wasm32")]
mod component {
    use std::io::Write as _;

    use catalog::api;

    wit_bindgen::generate!({
        path: "../../wit-p3",
        world: "azure-wasm:backend/http-service",
        generate_all,
    });

    use exports::wasi::http::handler::Guest;
    use wasi::http::types::{ErrorCode, Fields, Method, Request, Response};

    struct Catalog;

    impl Guest for Catalog {
        async fn handle(request: Request) -> Result<Response, ErrorCode> {
            let headers = request.get_headers();
            let header = |name: &str| {
                headers
                    .get(name)
                    .into_iter()
                    .next()
                    .map(|value| String::from_utf8_lossy(&value).into_owned())
            };
            let path_with_query = request
                .get_path_with_query()
                .unwrap_or_else(|| "/".to_owned());
            let response = api::handle_http(
                &method_name(&request.get_method()),
                &path_with_query,
                header,
                || wasi::random::random::get_random_bytes(16),
            );
            // One write, so the host receives the line whole.
            let _ = std::io::stderr().write_all(&response.log_line);
            send(response)
        }
    }

    fn send(response: api::Response) -> Result<Response, ErrorCode> {
        let content_length = response.content_length();
        let mut entries: Vec<(String, Vec<u8>)> = response
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into_bytes()))
            .collect();
        if let Some(length) = content_length {
            entries.push(("content-length".to_owned(), length.to_string().into_bytes()));
        }
        let invalid = |what: &str| ErrorCode::InternalError(Some(format!("invalid {what}")));
        let fields = Fields::from_list(&entries).map_err(|_| invalid("headers"))?;
        // No trailers: the writer's default answer when it is dropped unwritten.
        let (_trailers, trailers) = wit_future::new(|| Ok(None));
        let body = response.body;
        let contents = (content_length.is_some()).then(|| {
            let (mut writer, reader) = wit_stream::new();
            // The body goes after the head: a task that outlives `handle`.
            wit_bindgen::spawn_local(async move {
                let _ = writer.write_all(body).await;
            });
            reader
        });
        let (outgoing, _sent) = Response::new(fields, contents, trailers);
        outgoing
            .set_status_code(response.status)
            .map_err(|()| invalid("status"))?;
        Ok(outgoing)
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
}
