//! The request path, step by step: ingress, request context, limits,
//! routing to a component, admission, dispatch to a fresh instance of the
//! version serving now, egress. Each step lives in its own module.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Response;
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::body::HostBody;
use crate::context::RequestContext;
use crate::dispatch::Dispatcher;
use crate::egress;
use crate::guest_output::GuestOutput;
use crate::ingress::{self, Ingress};
use crate::limits::{self, Admission, LimitedBody, Limits, Rejection};
use crate::registry::Registry;

/// Serves requests with the registry's components, under the host's limits.
pub struct Handler {
    registry: Arc<Registry>,
    limits: Limits,
    admission: Admission,
    dispatcher: Arc<Dispatcher>,
}

impl Handler {
    /// A handler for the routes of `registry`.
    pub fn new(registry: Arc<Registry>, limits: Limits, dispatcher: Arc<Dispatcher>) -> Self {
        Self {
            registry,
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
        let path = head.uri.path().to_owned();
        let route = self.registry.route(&path);
        // The version a request starts with serves it to the end, whatever reloads meanwhile.
        let guest = route.map(|route| route.current());
        let span = tracing::info_span!(
            "request",
            correlation_id = %context.correlation_id,
            invocation_id = context.invocation_id.as_deref(),
            route = route.map(|route| route.prefix()),
            component_digest = guest.as_ref().map(|guest| guest.digest()),
        );
        tracing::debug!(parent: &span, method = %head.method, path = path.as_str(), "Request received");
        let refuse = |rejection| {
            span.in_scope(|| {
                egress::rejection_response(rejection, Some(&self.limits), &path, &context)
            })
        };
        if let Err(rejection) = limits::check_head(&head, &self.limits) {
            return refuse(rejection);
        }
        let Some(guest) = guest else {
            return refuse(Rejection::NoRoute);
        };
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
                guest.clone(),
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
            Ok(response) => egress::guest_response(response, &context, &guest),
            Err(failure) => {
                span.in_scope(|| egress::failure_response(&failure, &path, &context, &guest))
            }
        }
    }
}
