//! The request path, step by step: ingress, request context, limits,
//! routing to a component, admission, dispatch to a fresh instance of the
//! version serving now, egress. Each step lives in its own module; payload
//! mode wraps the same path in an envelope ([`crate::payload`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Response, StatusCode, header, request};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::body::{HostBody, full};
use crate::context::RequestContext;
use crate::dispatch::{Dispatcher, Finished};
use crate::egress;
use crate::guest_output::GuestOutput;
use crate::ingress::{self, Ingress, PayloadFunctions};
use crate::limits::{self, Admission, LimitedBody, Limits, Rejection};
use crate::payload::{self, PayloadFunction};
use crate::registry::Registry;

/// Largest response a payload-mode invocation buffers into its envelope.
const MAX_PAYLOAD_RESPONSE_BYTES: usize = 64 << 20;

/// Serves requests with the registry's components, under the host's limits.
pub struct Handler {
    registry: Arc<Registry>,
    limits: Limits,
    admission: Admission,
    dispatcher: Arc<Dispatcher>,
    payload: PayloadFunctions,
}

/// What serving one request produced.
struct Served {
    response: Response<HostBody>,
    /// Resolves when the guest is done, if one ran and answered.
    finished: Option<Finished>,
    output: Option<GuestOutput>,
}

impl Handler {
    /// A handler for the routes of `registry`; `payload` are the functions
    /// the Functions host invokes in payload mode.
    pub fn new(
        registry: Arc<Registry>,
        limits: Limits,
        dispatcher: Arc<Dispatcher>,
        payload: PayloadFunctions,
    ) -> Self {
        Self {
            registry,
            admission: Admission::new(limits.max_instances),
            limits,
            dispatcher,
            payload,
        }
    }

    /// Handles one request. Every outcome is a response: refusals and
    /// failures become problem+json, never a dropped connection or an empty body.
    pub async fn handle(&self, request: hyper::Request<Incoming>) -> Response<HostBody> {
        let (head, body) = request.into_parts();
        match ingress::classify(&head, &self.payload) {
            Ingress::Readiness => ingress::readiness_response(),
            Ingress::Forward => {
                let too_large = Arc::new(AtomicBool::new(false));
                let body =
                    LimitedBody::new(body, self.limits.max_request_body_bytes, too_large.clone());
                self.serve(head, body, too_large, false).await.response
            }
            Ingress::Payload(function) => self.invoke(function, head, body).await,
        }
    }

    /// One HTTP request through the pipeline, up to the response the caller
    /// gets. `collect_logs` keeps the guest's lines for a payload envelope.
    async fn serve<B>(
        &self,
        mut head: request::Parts,
        body: LimitedBody<B>,
        body_too_large: Arc<AtomicBool>,
        collect_logs: bool,
    ) -> Served
    where
        LimitedBody<B>: Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
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
        let refused = |rejection| Served {
            response: span.in_scope(|| {
                egress::rejection_response(rejection, Some(&self.limits), &path, &context)
            }),
            finished: None,
            output: None,
        };
        if let Err(rejection) = limits::check_head(&head, &self.limits) {
            return refused(rejection);
        }
        let Some(guest) = guest else {
            return refused(Rejection::NoRoute);
        };
        let permit = match self.admission.try_admit() {
            Ok(permit) => permit,
            Err(rejection) => return refused(rejection),
        };

        let scheme = if RequestContext::forwarded_https(&head) {
            Scheme::Https
        } else {
            Scheme::Http
        };
        context.prepare_for_guest(&mut head);
        let output = if collect_logs {
            GuestOutput::collecting(
                span.clone(),
                context.secrets.clone(),
                &context.correlation_id,
            )
        } else {
            GuestOutput::new(span.clone(), context.secrets.clone())
        };
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
            return refused(Rejection::BodyTooLarge);
        }
        let (response, finished) = match outcome {
            Ok((response, finished)) => (
                egress::guest_response(response, &context, &guest),
                Some(finished),
            ),
            Err(failure) => (
                span.in_scope(|| egress::failure_response(&failure, &path, &context, &guest)),
                None,
            ),
        };
        Served {
            response,
            finished,
            output: Some(output),
        }
    }

    /// A payload-mode invocation: the envelope's request through [`Self::serve`],
    /// the whole response and the guest's log lines back in an envelope.
    async fn invoke(
        &self,
        function: &PayloadFunction,
        head: request::Parts,
        body: Incoming,
    ) -> Response<HostBody> {
        let context = RequestContext::new(&head);
        let path = head.uri.path().to_owned();
        // Base64 makes a body a third larger; headers and the rest of the envelope come on top.
        let envelope_limit = self.limits.max_request_body_bytes as usize / 3 * 4
            + 2 * self.limits.max_header_bytes
            + (64 << 10);
        let envelope = match Limited::new(body, envelope_limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                let detail = format!("The invocation is larger than {envelope_limit} bytes.");
                return egress::problem_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &detail,
                    &path,
                    &context,
                );
            }
            Err(_) => {
                return egress::problem_response(
                    StatusCode::BAD_REQUEST,
                    "The invocation could not be read.",
                    &path,
                    &context,
                );
            }
        };
        let (inner_head, inner_body) = match payload::parse_invocation(&envelope, function, &head) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(
                    function = function.name.as_str(),
                    %error,
                    "Refused a malformed invocation"
                );
                let detail = format!("The invocation of {} is malformed: {error}.", function.name);
                return egress::problem_response(StatusCode::BAD_REQUEST, &detail, &path, &context);
            }
        };

        // Problems after this point are about the guest's request: its path and correlation id.
        let context = RequestContext::new(&inner_head);
        let path = inner_head.uri.path().to_owned();
        let too_large = Arc::new(AtomicBool::new(false));
        let inner_body = LimitedBody::new(
            Full::new(inner_body),
            self.limits.max_request_body_bytes,
            too_large.clone(),
        );
        let served = self.serve(inner_head, inner_body, too_large, true).await;
        let (mut parts, body) = served.response.into_parts();
        let body = Limited::new(body, MAX_PAYLOAD_RESPONSE_BYTES)
            .collect()
            .await
            .map(|collected| collected.to_bytes());
        if let Some(finished) = served.finished {
            finished.wait().await;
        }
        let mut logs = served
            .output
            .map(|output| output.take_logs())
            .unwrap_or_default();
        // Nothing has reached the caller yet: a body that failed, ran over or
        // is not text becomes a clean 500 problem.
        let problem;
        let checked = body
            .as_deref()
            .map_err(|error| {
                format!(
                    "The component's response body failed or was too large for payload mode \
                     ({error})."
                )
            })
            .and_then(|body| {
                std::str::from_utf8(body).map_err(|_| payload::BINARY_BODY.to_owned())
            });
        let text = match checked {
            Ok(text) => text,
            Err(detail) => {
                tracing::error!(
                    function = function.name.as_str(),
                    detail,
                    "An invocation's response cannot be returned"
                );
                logs.push(format!("[Error] {detail}"));
                parts.status = StatusCode::INTERNAL_SERVER_ERROR;
                parts.headers = egress::problem_headers(&context);
                problem = egress::problem_body(parts.status, &detail, &path, &context);
                // A problem is JSON, so text.
                std::str::from_utf8(&problem).unwrap_or_default()
            }
        };
        let envelope =
            payload::result_envelope(function, parts.status.as_u16(), &parts.headers, text, logs);
        let mut response = Response::new(full(envelope));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}
