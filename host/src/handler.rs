//! The request path, step by step: ingress, request context, limits and
//! admission, dispatch to a fresh guest instance, egress. Each step lives in
//! its own module.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Response;
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::body::HostBody;
use crate::context::RequestContext;
use crate::dispatch::Dispatcher;
use crate::egress;
use crate::guest::Guest;
use crate::guest_output::GuestOutput;
use crate::ingress::{self, Ingress};
use crate::limits::{self, Admission, LimitedBody, Limits, Rejection};
use crate::sandbox::Grants;

/// Serves requests with one guest, under the host's limits and grants.
pub struct Handler {
    guest: Arc<Guest>,
    limits: Limits,
    admission: Admission,
    dispatcher: Dispatcher,
}

impl Handler {
    /// A handler for `guest`.
    pub fn new(guest: Guest, limits: Limits, grants: Grants) -> Self {
        let dispatcher = Dispatcher::new(
            Arc::new(grants),
            limits.max_memory_bytes,
            limits.request_timeout,
        );
        Self {
            guest: Arc::new(guest),
            admission: Admission::new(limits.max_instances),
            limits,
            dispatcher,
        }
    }

    /// Handles one request. Every outcome is a response: refusals and
    /// failures become problem+json, never a dropped connection or an empty body.
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
        let path = head.uri.path().to_owned();
        tracing::debug!(parent: &span, method = %head.method, path = path.as_str(), "Request received");
        let refuse = |rejection| {
            span.in_scope(|| {
                egress::rejection_response(rejection, Some(&self.limits), &path, &context)
            })
        };
        if let Err(rejection) = limits::check_head(&head, &self.limits) {
            return refuse(rejection);
        }
        let permit = match self.admission.try_admit() {
            Ok(permit) => permit,
            Err(rejection) => return refuse(rejection),
        };

        let scheme = if RequestContext::forwarded_https(&head) {
            Scheme::Https
        } else {
            Scheme::Http
        };
        context.prepare_for_guest(&mut head);
        let body_too_large = Arc::new(AtomicBool::new(false));
        let body = LimitedBody::new(
            body,
            self.limits.max_request_body_bytes,
            body_too_large.clone(),
        );
        let output = GuestOutput::new(span.clone(), context.secrets.clone());
        let request = hyper::Request::from_parts(head, body);
        let outcome = self
            .dispatcher
            .run(
                self.guest.clone(),
                request,
                scheme,
                &output,
                span.clone(),
                permit,
            )
            .await;
        // An undeclared body that ran over the limit: whatever the guest made of it, the answer is 413.
        if body_too_large.load(Ordering::Acquire) {
            return refuse(Rejection::BodyTooLarge);
        }
        match outcome {
            Ok(response) => egress::guest_response(response, &context),
            Err(failure) => span.in_scope(|| egress::failure_response(&failure, &path, &context)),
        }
    }
}
