//! The request path, step by step: ingress, request context, dispatch to a
//! fresh guest instance, egress. Each step lives in its own module.

use std::sync::Arc;

use http::Response;
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::body::HostBody;
use crate::context::RequestContext;
use crate::guest::Guest;
use crate::guest_output::GuestOutput;
use crate::ingress::{self, Ingress};
use crate::{dispatch, egress};

/// Serves requests with one guest.
pub struct Handler {
    guest: Arc<Guest>,
}

impl Handler {
    /// A handler for `guest`.
    pub fn new(guest: Guest) -> Self {
        Self {
            guest: Arc::new(guest),
        }
    }

    /// Handles one request. Every outcome is a response: failures become
    /// problem+json, never a dropped connection or an empty body.
    pub async fn handle(&self, request: hyper::Request<Incoming>) -> Response<HostBody> {
        let (mut head, body) = request.into_parts();
        if ingress::classify(&head) == Ingress::Readiness {
            return ingress::readiness_response();
        }

        let context = RequestContext::new(&head);
        let span = tracing::info_span!(
            "request",
            correlation_id = %context.correlation_id,
            invocation_id = context.invocation_id.as_deref(),
        );
        tracing::debug!(parent: &span, method = %head.method, path = head.uri.path(), "Request received");
        let path = head.uri.path().to_owned();
        let scheme = if RequestContext::forwarded_https(&head) {
            Scheme::Https
        } else {
            Scheme::Http
        };
        context.prepare_for_guest(&mut head);

        let output = GuestOutput::new(span.clone(), context.secrets.clone());
        let request = hyper::Request::from_parts(head, body);
        match dispatch::run(self.guest.clone(), request, scheme, &output, span.clone()).await {
            Ok(response) => egress::guest_response(response, &context),
            Err(failure) => span.in_scope(|| egress::failure_response(&failure, &path, &context)),
        }
    }
}
