//! One request's trace: the `tracing` span its log lines are written in and,
//! when export is configured, its OpenTelemetry SERVER span, which continues
//! the caller's W3C `traceparent` (with its `tracestate`). The log span
//! carries the SERVER span's `trace_id` and `span_id`, so each log line
//! finds its trace and each trace its log lines.
//!
//! The SERVER span ends when the last holder of the request's trace lets go:
//! the spine once the response head is out, the guest's task once the guest
//! is done (its body written, or cut off).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::{StatusCode, request};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};

use super::{ids, metrics};
use crate::context::RequestContext;
use crate::failure::Problem;

/// One request's spans; cloned into everything that works for the request.
#[derive(Clone)]
pub(crate) struct RequestTrace {
    span: tracing::Span,
    server: Option<Arc<ServerSpan>>,
}

struct ServerSpan {
    tracer: &'static SdkTracer,
    /// The caller's context with the SERVER span in it.
    context: Context,
    started: Instant,
    /// The response status, 0 until known.
    status: AtomicU16,
    /// The `error.type` of a refusal or guest fault.
    error_type: OnceLock<&'static str>,
    /// What the metrics are broken down by.
    labels: Vec<KeyValue>,
}

impl RequestTrace {
    /// Starts the trace of a request that `route` (a prefix) serves with the
    /// component `digest`, if either is known.
    pub(crate) fn start(
        head: &request::Parts,
        context: &RequestContext,
        route: Option<&str>,
        digest: Option<&str>,
    ) -> Self {
        let server = super::tracer()
            .map(|tracer| Arc::new(ServerSpan::start(tracer, head, context, route, digest)));
        // Two call sites, so that an untraced request's span has no id fields
        // to visit: with export off, nothing is spent on it.
        let span = match &server {
            Some(server) => {
                let ids = server.context.span().span_context().clone();
                tracing::info_span!(
                    "request",
                    correlation_id = %context.correlation_id,
                    invocation_id = context.invocation_id.as_deref(),
                    route,
                    component_digest = digest,
                    trace_id = %ids.trace_id(),
                    span_id = %ids.span_id(),
                )
            }
            None => tracing::info_span!(
                "request",
                correlation_id = %context.correlation_id,
                invocation_id = context.invocation_id.as_deref(),
                route,
                component_digest = digest,
            ),
        };
        Self { span, server }
    }

    /// The log span, and this trace without it: for a task that is
    /// instrumented with the span, so the span is not held twice.
    pub(crate) fn split(self) -> (tracing::Span, Self) {
        let server = Self {
            span: tracing::Span::none(),
            server: self.server,
        };
        (self.span, server)
    }

    /// A trace of log lines only, in `span`.
    pub(crate) fn untraced(span: tracing::Span) -> Self {
        Self { span, server: None }
    }

    /// The SERVER span's trace id and span id, in hex, when it is exported.
    pub(crate) fn ids(&self) -> Option<[(&'static str, String); 2]> {
        let server = self.server.as_ref()?;
        let span = server.context.span();
        let ids = span.span_context();
        Some([
            ("trace_id", ids.trace_id().to_string()),
            ("span_id", ids.span_id().to_string()),
        ])
    }

    /// The span the request's log lines are written in.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Starts a child of the SERVER span, ended when dropped.
    pub(crate) fn child(&self, name: &'static str) -> ChildSpan {
        ChildSpan(
            self.server
                .as_ref()
                .map(|server| server.tracer.start_with_context(name, &server.context)),
        )
    }

    /// Starts a CLIENT span for an outgoing request and puts its context
    /// into the request's `traceparent` and `tracestate`, so the next hop
    /// continues this trace.
    pub(crate) fn outgoing<B>(&self, request: &mut http::Request<B>) -> ClientSpan {
        let Some(server) = &self.server else {
            return ClientSpan(None);
        };
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let mut attributes = vec![KeyValue::new(
            "http.request.method",
            request.method().as_str().to_owned(),
        )];
        if let Some(authority) = uri.authority() {
            attributes.push(KeyValue::new("server.address", authority.host().to_owned()));
            let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
            attributes.push(KeyValue::new("server.port", i64::from(port)));
            // No query: it may carry a secret.
            let scheme = if https { "https" } else { "http" };
            attributes.push(KeyValue::new(
                "url.full",
                format!("{scheme}://{authority}{}", uri.path()),
            ));
        }
        let span = server
            .tracer
            .span_builder(request.method().as_str().to_owned())
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(server.tracer, &server.context);
        let injected = Context::new().with_remote_span_context(span.span_context().clone());
        TraceContextPropagator::new()
            .inject_context(&injected, &mut HeaderInjector(request.headers_mut()));
        ClientSpan(Some(span))
    }

    /// The response status the caller gets.
    pub(crate) fn record_status(&self, status: StatusCode) {
        if let Some(server) = &self.server {
            server.status.store(status.as_u16(), Ordering::Relaxed);
        }
    }

    /// A refusal or a guest fault: an error status and an `exception` event
    /// on the SERVER span, and a count.
    pub(crate) fn record_problem(&self, problem: &dyn Problem) {
        let Some(server) = &self.server else {
            return;
        };
        let _ = server.error_type.set(problem.kind());
        let span = server.context.span();
        span.add_event("exception", exception(problem.kind(), problem.to_string()));
        span.set_status(Status::error(problem.detail()));
        if metrics::enabled() {
            let mut attributes = server.labels.clone();
            attributes.push(KeyValue::new("error.type", problem.kind()));
            metrics::problem(problem.is_guest_fault(), &attributes);
        }
    }
}

impl ServerSpan {
    fn start(
        tracer: &'static SdkTracer,
        head: &request::Parts,
        context: &RequestContext,
        route: Option<&str>,
        digest: Option<&str>,
    ) -> Self {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(&head.headers));
        // No caller's trace: the trace id the correlation id already is.
        let trace_id = match parent.span().span_context().is_valid() {
            true => None,
            false => ids::trace_id_of(&context.correlation_id),
        };
        // The root route's prefix is empty.
        let route = route.map(|route| if route.is_empty() { "/" } else { route });
        let method = head.method.as_str().to_owned();
        let mut labels = vec![KeyValue::new("http.request.method", method.clone())];
        if let Some(route) = route {
            labels.push(KeyValue::new("http.route", route.to_owned()));
        }
        if let Some(digest) = digest {
            labels.push(KeyValue::new(
                "wasm_handler.component.digest",
                digest.to_owned(),
            ));
        }
        let mut attributes = labels.clone();
        attributes.extend([
            KeyValue::new("url.path", head.uri.path().to_owned()),
            KeyValue::new(
                "url.scheme",
                match RequestContext::forwarded_https(head) {
                    true => "https",
                    false => "http",
                },
            ),
            KeyValue::new("network.protocol.version", "1.1"),
            KeyValue::new("faas.trigger", "http"),
            KeyValue::new(
                "wasm_handler.correlation_id",
                context.correlation_id.clone(),
            ),
        ]);
        if let Some(authority) = head
            .headers
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok()?.parse::<http::uri::Authority>().ok())
        {
            attributes.push(KeyValue::new("server.address", authority.host().to_owned()));
            if let Some(port) = authority.port_u16() {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        if let Some(invocation_id) = &context.invocation_id {
            attributes.push(KeyValue::new("faas.invocation_id", invocation_id.clone()));
        }
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method,
        };
        let span = ids::with_trace_id(trace_id, || {
            tracer
                .span_builder(name)
                .with_kind(SpanKind::Server)
                .with_attributes(attributes)
                .start_with_context(tracer, &parent)
        });
        Self {
            tracer,
            context: parent.with_span(span),
            started: Instant::now(),
            status: AtomicU16::new(0),
            error_type: OnceLock::new(),
            labels,
        }
    }
}

impl Drop for ServerSpan {
    fn drop(&mut self) {
        let status = self.status.load(Ordering::Relaxed);
        let span = self.context.span();
        if status != 0 {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        // The conventions: a 5xx is an error of the server span.
        if status >= 500 && self.error_type.get().is_none() {
            span.set_status(Status::error(""));
        }
        span.end();
        if metrics::enabled() {
            let mut attributes = self.labels.clone();
            if status != 0 {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
            }
            if let Some(error_type) = self.error_type.get() {
                attributes.push(KeyValue::new("error.type", *error_type));
            }
            metrics::request_finished(self.started.elapsed(), &attributes);
        }
    }
}

fn exception(kind: &'static str, message: String) -> Vec<KeyValue> {
    vec![
        KeyValue::new("exception.type", kind),
        KeyValue::new("exception.message", message),
    ]
}

/// A child span of a request's SERVER span (nothing when not exported).
pub(crate) struct ChildSpan(Option<SdkSpan>);

impl ChildSpan {
    /// Adds an attribute.
    pub(crate) fn set(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(attribute);
        }
    }

    /// Marks the span failed by `problem`, with an `exception` event.
    pub(crate) fn fail(&mut self, problem: &dyn Problem) {
        if let Some(span) = &mut self.0 {
            span.add_event("exception", exception(problem.kind(), problem.to_string()));
            span.set_status(Status::error(problem.detail()));
        }
    }
}

/// The CLIENT span of one outgoing request, ended when dropped.
pub(crate) struct ClientSpan(Option<SdkSpan>);

impl ClientSpan {
    /// No span: the request is not traced.
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// The response's status.
    pub(crate) fn responded(&mut self, status: StatusCode) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.is_client_error() || status.is_server_error() {
                span.set_status(Status::error(""));
            }
        }
    }

    /// The request failed without a response.
    pub(crate) fn failed(&mut self, error: &dyn std::fmt::Display) {
        if let Some(span) = &mut self.0 {
            let message = error.to_string();
            span.add_event("exception", exception("outgoing_request", message.clone()));
            span.set_attribute(KeyValue::new("error.type", "outgoing_request"));
            span.set_status(Status::error(message));
        }
    }
}
