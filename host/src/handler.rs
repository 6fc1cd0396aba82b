//! The request path, step by step: ingress, request context, limits,
//! routing to a component, admission (or an idle instance where the route
//! reuses them, [`crate::reuse`]), dispatch to an instance of the version
//! serving now, egress. Each step lives in its own module; payload mode
//! reaches the same spine through its envelope ([`crate::payload`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, request};
use http_body::Body;
use hyper::body::Incoming;
use opentelemetry::KeyValue;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::body::{BodyReport, HostBody, LimitedBody, RequestBody};
use crate::component::ComponentVersion;
use crate::context::RequestContext;
use crate::dispatch::{Dispatcher, Finished};
use crate::egress;
use crate::failure::{Problem as _, Rejection};
use crate::guest_output::{Destination, GuestOutput};
use crate::ingress::{self, Ingress};
use crate::limits::{self, Admission, Limits};
use crate::payload::{self, PayloadFunctions};
use crate::registry::Registry;
use crate::reuse::Lease;
use crate::telemetry::{RequestTrace, span_names};
use crate::wire;

/// Serves requests with the registry's components, under the host's limits.
pub(crate) struct Handler {
    registry: Arc<Registry>,
    limits: Limits,
    admission: Admission,
    dispatcher: Arc<Dispatcher>,
    payload: PayloadFunctions,
}

/// What serving one request produced.
pub(crate) struct Served {
    /// The response for the caller.
    pub(crate) response: Response<HostBody>,
    /// Resolves when the guest is done, if one ran and answered.
    pub(crate) finished: Option<Finished>,
    /// The guest's output, if one ran.
    pub(crate) output: Option<GuestOutput>,
}

/// How a request gets its instance permit: from the gate, when the spine
/// reaches admission, or already held (payload mode takes it before it
/// reads the envelope).
pub(crate) enum Admit {
    /// Ask the gate.
    Gate,
    /// This permit.
    Held(OwnedSemaphorePermit),
}

/// A request's wait for a permit: since when, and until when for now.
struct AdmissionWait {
    started: tokio::time::Instant,
    deadline: tokio::time::Instant,
}

impl AdmissionWait {
    fn start() -> Self {
        let started = tokio::time::Instant::now();
        Self {
            started,
            deadline: started + limits::ADMISSION_WAIT,
        }
    }
}

impl Handler {
    /// A handler for the routes of `registry`; `payload` are the functions
    /// the Functions host invokes in payload mode.
    pub(crate) fn new(
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

    /// The host's limits.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A permit for one more instance, or [`Rejection::Overloaded`]. When
    /// idle instances hold every permit, one of them is dropped to free its
    /// permit: a request that needs a new instance beats one kept in case.
    /// When busy ones hold them all, it waits for one to go ([`Self::wait_on`]).
    pub(crate) async fn admit(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        let rejection = match self.admit_now() {
            Ok(permit) => return Ok(permit),
            Err(rejection) => rejection,
        };
        let mut wait = AdmissionWait::start();
        loop {
            tokio::select! {
                permit = self.admission.acquire() => return Ok(permit),
                () = tokio::time::sleep_until(wait.deadline) => {
                    if !self.wait_on(&mut wait) {
                        return Err(rejection);
                    }
                }
            }
        }
    }

    /// Whether a request that found every permit held waits on, past
    /// `wait`'s deadline: up to [`limits::ADMISSION_WAIT`], and on while an
    /// instance whose response is complete is about to give its permit back,
    /// up to [`limits::FINISHING_WAIT`] in all.
    fn wait_on(&self, wait: &mut AdmissionWait) -> bool {
        let on =
            self.dispatcher.finishing().any() && wait.started.elapsed() < limits::FINISHING_WAIT;
        wait.deadline += limits::ADMISSION_WAIT;
        on
    }

    fn admit_now(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        self.admission.try_admit().or_else(|rejection| {
            if self.registry.evict_one_idle() {
                self.admission.try_admit()
            } else {
                Err(rejection)
            }
        })
    }

    /// The instance a request on `version` runs in: an idle one when its
    /// route reuses them (a permit already held is then returned), else a
    /// new one under a permit. When every permit is held it waits for either
    /// ([`Self::wait_on`]): an instance of this version back from its last
    /// request, or a permit.
    async fn lease(&self, version: &ComponentVersion, admit: Admit) -> Result<Lease, Rejection> {
        let mut held = match admit {
            Admit::Held(permit) => Some(permit),
            Admit::Gate => None,
        };
        let mut wait = AdmissionWait::start();
        loop {
            // Enabled before the looks below, so no notice after them is missed.
            let freed = version.shared().freed();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if let Some(worker) = version.idle().take() {
                return Ok(Lease::Reused(worker));
            }
            if let Some(lease) = version.shared().take() {
                return Ok(Lease::Shared(lease));
            }
            if let Some(permit) = held.take() {
                return Ok(Lease::Fresh(permit));
            }
            let rejection = match self.admit_now() {
                Ok(permit) => return Ok(Lease::Fresh(permit)),
                Err(rejection) => rejection,
            };
            tokio::select! {
                permit = self.admission.acquire() => return Ok(Lease::Fresh(permit)),
                () = version.idle().returned() => {}
                () = freed => {}
                () = tokio::time::sleep_until(wait.deadline) => {
                    if !self.wait_on(&mut wait) {
                        return Err(rejection);
                    }
                }
            }
        }
    }

    /// Handles one request. Every outcome is a response: refusals and
    /// failures become problem+json, never a dropped connection or an empty body.
    pub(crate) async fn handle(&self, request: hyper::Request<Incoming>) -> Response<HostBody> {
        let (head, body) = request.into_parts();
        let body = RequestBody::new(body);
        if let Err(rejection) = wire::check_host(&head) {
            let context = RequestContext::new(&head);
            return egress::problem_response(&rejection, head.uri.path(), &context, None);
        }
        match ingress::classify(&head, &self.payload) {
            Ingress::Readiness => ingress::readiness_response(),
            Ingress::Forward => {
                let (body, report) = LimitedBody::new(body, self.limits.max_request_body_bytes);
                self.serve(head, body, report, Destination::Console, Admit::Gate)
                    .await
                    .response
            }
            Ingress::Payload(function) => payload::invoke(self, function, head, body).await,
        }
    }

    /// One HTTP request through the spine, up to the response the caller
    /// gets; the guest's output goes to `destination`.
    pub(crate) async fn serve<B>(
        &self,
        mut head: request::Parts,
        body: LimitedBody<B>,
        request_body: BodyReport,
        destination: Destination,
        admit: Admit,
    ) -> Served
    where
        LimitedBody<B>: Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let context = RequestContext::new(&head);
        let path = head.uri.path().to_owned();
        let route = self.registry.route(&path);
        // The version a request starts with serves it to the end, whatever reloads meanwhile.
        let version = route.map(|route| route.current());
        let trace = RequestTrace::start(
            &head,
            &context,
            route.map(|route| route.prefix()),
            version.as_ref().map(|version| version.digest()),
        );
        tracing::debug!(
            parent: trace.span(),
            method = %head.method,
            path = path.as_str(),
            correlation_source = ?context.correlation_source,
            "Request received"
        );
        let refused = |rejection: Rejection| {
            trace.record_problem(&rejection);
            trace.record_status(rejection.status());
            Served {
                response: trace
                    .span()
                    .in_scope(|| egress::problem_response(&rejection, &path, &context, None)),
                finished: None,
                output: None,
            }
        };
        if let Err(rejection) = limits::check_head(&head, &self.limits) {
            return refused(rejection);
        }
        let Some(version) = version else {
            return refused(Rejection::NoRoute);
        };
        let mut admission = trace.child(span_names::ADMISSION);
        let lease = match self.lease(&version, admit).await {
            Ok(lease) => lease,
            Err(rejection) => {
                admission.fail(&rejection);
                return refused(rejection);
            }
        };
        admission.set(KeyValue::new(
            "wasm_handler.instance.reused",
            matches!(lease, Lease::Reused(_) | Lease::Shared(_)),
        ));
        drop(admission);

        let scheme = if RequestContext::forwarded_https(&head) {
            Scheme::Https
        } else {
            Scheme::Http
        };
        context.prepare_for_guest(&mut head);
        let output = GuestOutput::new(trace.clone(), context.secrets.clone(), destination);
        let request = hyper::Request::from_parts(head, body);
        let outcome = self
            .dispatcher
            .run(
                version.clone(),
                request,
                scheme,
                &output,
                trace.clone(),
                lease,
                request_body.clone(),
            )
            .await;
        // An undeclared body that ran over the limit: whatever the guest made of it, the answer is 413.
        if request_body.too_large() {
            return refused(Rejection::BodyTooLarge {
                limit: self.limits.max_request_body_bytes,
            });
        }
        let (response, finished) = match outcome {
            Ok((response, finished)) => (
                egress::guest_response(response, &context, &version),
                Some(finished),
            ),
            Err(failure) => {
                trace.record_problem(&failure);
                let response = trace.span().in_scope(|| {
                    egress::problem_response(&failure, &path, &context, Some(&version))
                });
                (response, None)
            }
        };
        trace.record_status(response.status());
        Served {
            response,
            finished,
            output: Some(output),
        }
    }
}
