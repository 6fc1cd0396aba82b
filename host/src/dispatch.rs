//! Dispatch: one request, one fresh instance. A new `Store` holds a new
//! [`Sandbox`]; the instance is made from the pre-instantiated guest and its
//! `handle` (`wasi:http/incoming-handler` 0.2 or `wasi:http/handler` 0.3,
//! [`Call`]) runs in its own task, so the guest can go on streaming the body
//! after it has handed over the response head. Everything around the call
//! (deadline, memory cap, faults, cut-off, reuse) is the same in both worlds.
//!
//! The task owns everything the instance costs: the store, its pool slot and
//! the admission permit, dropped in that order when the guest is done or its
//! deadline passes. The guest yields to tokio at every epoch tick, so even a
//! loop that never calls the host is stopped at its deadline.
//!
//! On a route that reuses instances ([`crate::reuse`]), the task instead
//! hands the instance back, with its permit, after a request that ended
//! cleanly: the call returned, the response was set and its body reached its
//! end, the memory cap was never hit and the request body never failed.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt as _;
use opentelemetry::KeyValue;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::oneshot;
use tracing::{Instrument as _, Span};
use wasmtime::component::{Accessor, Resource};
use wasmtime::error::Context as _;
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::handler::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::p3;

use crate::body::{BodyReport, EndWatch, HostBody, cut_off_visibly};
use crate::component::ComponentVersion;
use crate::context::Secrets;
use crate::failure::GuestFailure;
use crate::guest_output::{Destination, GuestOutput};
use crate::limits::{Finishing, FinishingInstance};
use crate::reuse::{Lease, Worker};
use crate::sandbox::{Grants, Sandbox};
use crate::shared::{self, SharedLease};
use crate::telemetry::{RequestTrace, span_names};

/// Makes and runs instances under the host's grants and limits.
pub(crate) struct Dispatcher {
    grants: Arc<Grants>,
    max_memory_bytes: usize,
    request_timeout: Duration,
    finishing: Finishing,
}

/// Resolves when a guest that has sent its response head is done (its body
/// finished or cut off, its instance dropped or, when shared, its request
/// done). Dropping it lets the guest run on.
pub(crate) enum Finished {
    /// The task that owns the instance.
    Task(tokio::task::JoinHandle<Result<(), GuestFailure>>),
    /// The request's outcome, from the shared instance serving it.
    Shared(oneshot::Receiver<Result<(), GuestFailure>>),
    /// The guest was done before its response was returned.
    Done(Result<(), GuestFailure>),
}

impl Finished {
    /// Waits for the guest to be done; its own failures are already logged.
    pub(crate) async fn wait(self) {
        let _ = self.outcome().await;
    }

    /// How the guest's work on the request ended.
    async fn outcome(self) -> Result<(), GuestFailure> {
        match self {
            Finished::Task(task) => task.await.map_err(|error| GuestFailure::Task {
                cause: error.to_string(),
            })?,
            Finished::Shared(outcome) => outcome.await.map_err(|_| GuestFailure::InstanceLost {
                cause: "it ended without saying how".to_owned(),
            })?,
            Finished::Done(outcome) => outcome,
        }
    }
}

/// How far a guest got before it failed.
enum Stage {
    Instantiate(wasmtime::Error),
    Handle(wasmtime::Error),
}

impl Dispatcher {
    /// A dispatcher granting `grants`, capping memory and run time.
    pub(crate) fn new(
        grants: Arc<Grants>,
        max_memory_bytes: usize,
        request_timeout: Duration,
    ) -> Self {
        Self {
            grants,
            max_memory_bytes,
            request_timeout,
            finishing: Finishing::default(),
        }
    }

    /// The instances whose response is complete but whose permit is not
    /// back yet, which admission waits for.
    pub(crate) fn finishing(&self) -> &Finishing {
        &self.finishing
    }

    /// Runs `request` in the instance `lease` gives (a fresh one unless the
    /// route reuses them) and returns its response, with a handle that
    /// resolves when the guest is done (the body may still be streaming when
    /// the response is returned). The lease's permit is released when the
    /// instance is gone; guest output goes to `output`; the guest's work is
    /// traced in `trace`; `request_body` tells whether the body failed.
    #[expect(
        clippy::too_many_arguments,
        reason = "one request's parts, each used once"
    )]
    pub(crate) async fn run<B>(
        &self,
        version: Arc<ComponentVersion>,
        request: hyper::Request<B>,
        scheme: Scheme,
        output: &GuestOutput,
        trace: RequestTrace,
        lease: Lease,
        request_body: BodyReport,
    ) -> Result<(hyper::Response<HostBody>, Finished), GuestFailure>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let (mut store, proxy, served, permit) = match lease {
            Lease::Shared(lease) => {
                return self
                    .run_shared(request, scheme, output, trace, lease, request_body)
                    .await;
            }
            Lease::Fresh(permit) if version.shared().enabled() => {
                let lease = self.start_shared(&version, permit);
                return self
                    .run_shared(request, scheme, output, trace, lease, request_body)
                    .await;
            }
            Lease::Fresh(permit) => (self.store(version.engine(), output), None, 0, permit),
            Lease::Reused(worker) => {
                worker.store.data().outlet().connect(output);
                (
                    worker.store,
                    Some(worker.proxy),
                    worker.served,
                    worker.permit,
                )
            }
        };
        // A reused instance has served before; a fresh one has not.
        let reused = served > 0;
        let served = served + 1;
        let reusable = version.idle().may_serve_again(served);
        let (sender, receiver) = oneshot::channel();
        let head_sent = Arc::new(AtomicBool::new(false));
        let respond = Respond {
            sender,
            head_sent: head_sent.clone(),
        };
        // Only a reusable instance and a 0.3 call (whose store drives its
        // body) wait for the body's end: a fresh 0.2 request tracks nothing.
        let (watch, mut body_end) = if reusable || matches!(version.pre(), ProxyPre::P3(_)) {
            let (ended, receiver) = oneshot::channel();
            let watch = EndWatch {
                ended,
                finishing: self.finishing.clone(),
            };
            (Some(watch), BodyEnd::Waiting(receiver))
        } else {
            (None, BodyEnd::Known(None))
        };
        let failed_after_head = Arc::new(AtomicBool::new(false));
        let body_cut_off = failed_after_head.clone();
        let call = match version.pre() {
            ProxyPre::P2(_) => Call::p2(&mut store, scheme, request, respond),
            ProxyPre::P3(_) => Ok(Call::p3(store.data_mut(), scheme, request, respond)),
        }
        .map_err(GuestFailure::Host)?;

        let (timeout, max_memory_bytes) = (self.request_timeout, self.max_memory_bytes);
        let (log_span, trace) = trace.split();
        let guest: GuestRun = Box::pin(
            async move {
                let deadline = tokio::time::Instant::now() + timeout;
                let mut handling = None;
                let outcome = tokio::time::timeout_at(deadline, async {
                    let proxy = match proxy {
                        Some(proxy) => proxy,
                        None => {
                            let _instantiating = trace.child(span_names::INSTANTIATE);
                            version.pre().instantiate_async(&mut store).await.map_err(Stage::Instantiate)?
                        }
                    };
                    let span = handling.insert(trace.child(span_names::HANDLE));
                    span.set(KeyValue::new("wasm_handler.instance.reused", reused));
                    span.set(KeyValue::new("wasm_handler.instance.requests", i64::from(served)));
                    call.run(&mut store, &proxy, &mut body_end).await.map_err(Stage::Handle)?;
                    Ok(proxy)
                })
                .await;
                let result = match outcome {
                    Ok(Ok(proxy)) => Ok(proxy),
                    Err(_elapsed) => Err(GuestFailure::Deadline(timeout)),
                    Ok(Err(Stage::Instantiate(error))) => Err(instantiation_failure(error)),
                    Ok(Err(Stage::Handle(trap))) => {
                        Err(trap_failure(trap, store.data().memory_limit_hit(), max_memory_bytes))
                    }
                };
                if let (Err(failure), Some(span)) = (&result, &mut handling) {
                    span.fail(failure);
                }
                drop(handling);
                let cut_off = result.is_err() && head_sent.load(Ordering::Acquire);
                // Before the store goes: dropping it is what ends the body.
                failed_after_head.store(cut_off, Ordering::Release);
                let proxy = match result {
                    Ok(proxy) => proxy,
                    Err(failure) => {
                        // The slot goes back to the pool before the permit is released.
                        drop(store);
                        drop(permit);
                        if !cut_off {
                            return Err(failure);
                        }
                        // The head is gone: all that is left is to cut the body off and say why.
                        trace.record_problem(&failure);
                        tracing::error!(error = %failure, "The component failed after it sent the response head; the body was cut off");
                        return Ok(());
                    }
                };
                if reusable
                    && head_sent.load(Ordering::Acquire)
                    && !store.data().memory_limit_hit()
                    && !request_body.failed()
                    // Not before its response is complete: until then the guest may hold on to it.
                    && tokio::time::timeout_at(deadline, body_end.wait()).await == Ok(true)
                {
                    store.data().outlet().disconnect();
                    version.idle().put_back(Worker {
                        store,
                        proxy,
                        served,
                        permit,
                    });
                } else {
                    if reusable {
                        tracing::debug!("Retired a reusable instance: its request did not end cleanly");
                    }
                    drop(store);
                    drop(permit);
                }
                // The instance's mark in `finishing` goes last (on the
                // failure paths, at the return, after store and permit).
                drop(body_end);
                Ok(())
            }
            .instrument(log_span),
        );
        let (head, finished) = if watch.is_none() {
            run_until_head(guest, receiver).await
        } else {
            // It waits for its body's end, which only comes once the head is returned.
            let task = tokio::spawn(guest);
            (receiver.await, Finished::Task(task))
        };
        response_head(head, watch, body_cut_off, finished).await
    }

    /// Registers a new shared instance of `version` under `permit`, with its
    /// first request leased, and starts its task.
    fn start_shared(
        &self,
        version: &Arc<ComponentVersion>,
        permit: OwnedSemaphorePermit,
    ) -> SharedLease {
        let span = tracing::info_span!(
            "shared_instance",
            shared_instance = tracing::field::Empty,
            digest = version.digest()
        );
        let output = GuestOutput::new(
            RequestTrace::untraced(span.clone()),
            Secrets::default(),
            Destination::Console,
        );
        let store = self.store(version.engine(), &output);
        let (lease, id, queue) = version.shared().start(output);
        span.record("shared_instance", id);
        let instance = shared::Instance {
            version: version.clone(),
            id,
            store,
            permit,
            queue,
            timeout: self.request_timeout,
            max_memory_bytes: self.max_memory_bytes,
        };
        tokio::spawn(instance.run().instrument(span));
        lease
    }

    /// Runs `request` on the shared instance `lease` has room on.
    async fn run_shared<B>(
        &self,
        request: hyper::Request<B>,
        scheme: Scheme,
        output: &GuestOutput,
        trace: RequestTrace,
        lease: SharedLease,
        request_body: BodyReport,
    ) -> Result<(hyper::Response<HostBody>, Finished), GuestFailure>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        lease.output().redact_also(output);
        let (sender, receiver) = oneshot::channel();
        let head_sent = Arc::new(AtomicBool::new(false));
        let (ended, body_end) = oneshot::channel();
        let watch = EndWatch {
            ended,
            finishing: self.finishing.clone(),
        };
        let cut_off = Arc::new(AtomicBool::new(false));
        let (outcome, finished) = oneshot::channel();
        let (log_span, trace) = trace.split();
        let served = lease.served();
        let job = shared::Job {
            request: request.map(|body| body.map_err(Into::into).boxed_unsync()),
            scheme,
            respond: Respond {
                sender,
                head_sent: head_sent.clone(),
            },
            body_end: BodyEnd::Waiting(body_end),
            report: shared::Report {
                outcome,
                head_sent,
                cut_off: cut_off.clone(),
                log_span,
                trace,
                deadline: tokio::time::Instant::now() + self.request_timeout,
                request_body,
                served,
            },
        };
        lease.submit(job)?;
        response_head(
            receiver.await,
            Some(watch),
            cut_off,
            Finished::Shared(finished),
        )
        .await
    }

    /// Makes one instance of `version` and drops it: what a new component
    /// version must survive before it serves.
    pub(crate) async fn smoke_test(&self, version: &ComponentVersion) -> wasmtime::Result<()> {
        let output = GuestOutput::new(
            RequestTrace::untraced(Span::current()),
            Secrets::default(),
            Destination::Console,
        );
        let mut store = self.store(version.engine(), &output);
        tokio::time::timeout(
            self.request_timeout,
            version.pre().instantiate_async(&mut store),
        )
        .await
        .map_err(|_| {
            wasmtime::format_err!("instantiating took longer than {:?}", self.request_timeout)
        })?
        .map(drop)
        .context("a test instance of the component failed")
    }

    /// A fresh store: a new sandbox, the memory cap, and a yield to tokio at
    /// every epoch tick (so a deadline can stop any guest).
    fn store(&self, engine: &Engine, output: &GuestOutput) -> Store<Sandbox> {
        let mut store = Store::new(
            engine,
            Sandbox::new(output, &self.grants, self.max_memory_bytes),
        );
        store.limiter(|sandbox| sandbox.limiter());
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }
}

/// The guest's work on one request, up to its end.
type GuestRun = Pin<Box<dyn Future<Output = Result<(), GuestFailure>> + Send>>;

/// Runs a 0.2 `guest` whose instance serves no other request (a fresh one,
/// or a reused one's last) on the caller's task until it is done or has
/// sent its response head, whichever comes first; only a guest still at
/// work then (streaming its body) gets a task of its own. A small response,
/// the common case, then costs no task spawn and no wake-up of another
/// worker (bench/RESULTS.md, 2026-12-08: a few per cent less server CPU
/// per fresh request). Should the caller's task be dropped first (its
/// client gone), the guest is moved to a task and runs to its end or
/// deadline, as a spawned one would.
async fn run_until_head<T>(
    guest: GuestRun,
    mut head: oneshot::Receiver<T>,
) -> (Result<T, oneshot::error::RecvError>, Finished) {
    let mut inline = Inline(Some(guest));
    let first = std::future::poll_fn(|cx| {
        let Some(guest) = inline.0.as_mut() else {
            // Not polled again once ready.
            return Poll::Ready(First::Done(Err(GuestFailure::NoResponse)));
        };
        // A panic in the host's code under the guest fails this request, as
        // it would in a task of its own, and not the whole connection.
        match std::panic::catch_unwind(AssertUnwindSafe(|| guest.as_mut().poll(cx))) {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(outcome)) => {
                inline.0 = None;
                return Poll::Ready(First::Done(outcome));
            }
            Err(panic) => {
                inline.0 = None;
                let cause = format!("it panicked: {}", panic_message(&*panic));
                return Poll::Ready(First::Done(Err(GuestFailure::Task { cause })));
            }
        }
        // A closed channel (no head will come) is ready too: the guest
        // then goes on in its task and says why.
        Pin::new(&mut head).poll(cx).map(First::Head)
    })
    .await;
    match first {
        First::Head(head) => (head, inline.into_task()),
        // Done, the guest has sent its head or dropped the sender.
        First::Done(outcome) => (head.await, Finished::Done(outcome)),
    }
}

/// What [`run_until_head`] saw first.
enum First<T> {
    /// The head (or the channel closed), with the guest still at work.
    Head(Result<T, oneshot::error::RecvError>),
    /// The guest's end.
    Done(Result<(), GuestFailure>),
}

/// A guest run on the caller's task; dropped unfinished, it goes on in a
/// task of its own.
struct Inline(Option<GuestRun>);

impl Inline {
    /// The rest of the guest's run, in a task of its own.
    fn into_task(mut self) -> Finished {
        match self.0.take() {
            Some(guest) => Finished::Task(tokio::spawn(guest)),
            None => Finished::Done(Ok(())),
        }
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        if let Some(guest) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(guest);
        }
    }
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Where the guest's response head goes, and the flag that says it went.
pub(crate) struct Respond {
    sender: oneshot::Sender<Result<hyper::Response<HostBody>, wasmtime_wasi_http::Error>>,
    head_sent: Arc<AtomicBool>,
}

impl Respond {
    pub(crate) fn send(
        self,
        response: Result<hyper::Response<HostBody>, wasmtime_wasi_http::Error>,
    ) {
        self.head_sent.store(true, Ordering::Release);
        let _ = self.sender.send(response);
    }
}

/// The response a guest's head makes, once it comes through `receiver`:
/// its body watched by `watch` and cut off visibly if `cut_off` is set; or,
/// when no head came, why, as `finished` tells.
async fn response_head(
    head: Result<
        Result<hyper::Response<HostBody>, wasmtime_wasi_http::Error>,
        oneshot::error::RecvError,
    >,
    watch: Option<EndWatch>,
    cut_off: Arc<AtomicBool>,
    finished: Finished,
) -> Result<(hyper::Response<HostBody>, Finished), GuestFailure> {
    match head {
        Ok(Ok(response)) => {
            let content_length = watch.as_ref().and_then(|_| {
                response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|value| value.to_str().ok()?.parse().ok())
            });
            let response =
                response.map(|body| cut_off_visibly(body, content_length, cut_off, watch));
            Ok((response, finished))
        }
        Ok(Err(code)) => Err(GuestFailure::ErrorCode(code)),
        // The store, and with it the sender, is gone: the guest's side says why.
        Err(_) => Err(finished
            .outcome()
            .await
            .err()
            .unwrap_or(GuestFailure::NoResponse)),
    }
}

/// Whether the response body reached its end ([`cut_off_visibly`] tells),
/// waited for once and remembered, with the instance's mark in
/// [`Finishing`] from then on.
pub(crate) enum BodyEnd {
    Waiting(oneshot::Receiver<FinishingInstance>),
    Known(Option<FinishingInstance>),
}

impl BodyEnd {
    async fn wait(&mut self) -> bool {
        if let BodyEnd::Waiting(receiver) = self {
            *self = BodyEnd::Known(receiver.await.ok());
        }
        self.ended()
    }

    /// Whether the body is known to have reached its end.
    pub(crate) fn ended(&self) -> bool {
        matches!(self, BodyEnd::Known(Some(_)))
    }
}

/// The request in its world's terms, ready for the guest's `handle`.
pub(crate) enum Call {
    /// 0.2: the incoming request, and the outparam the response comes back through.
    P2 {
        incoming: Resource<HostIncomingRequest>,
        outparam: Resource<HostResponseOutparam>,
    },
    /// 0.3: the request, the future that reports how its body was read (the
    /// response needs it), and where the response goes.
    P3 {
        request: p3::Request,
        request_io: Pin<Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>>,
        respond: Respond,
    },
}

impl Call {
    fn p2<B>(
        store: &mut Store<Sandbox>,
        scheme: Scheme,
        request: hyper::Request<B>,
        respond: Respond,
    ) -> wasmtime::Result<Self>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut http = store.data_mut().http();
        let incoming = http.new_incoming_request(scheme, request)?;
        let outparam = http.new_response_outparam_from_callback(move |response| {
            respond.send(response.map_err(Into::into));
        })?;
        Ok(Call::P2 { incoming, outparam })
    }

    pub(crate) fn p3<B>(
        sandbox: &mut Sandbox,
        scheme: Scheme,
        request: hyper::Request<B>,
        respond: Respond,
    ) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // 0.3 takes scheme and authority from the URI; 0.2 is given the
        // scheme and reads the authority from `Host`: the guest sees the same.
        let request = with_absolute_uri(request, scheme);
        let (request, request_io) = p3::Request::from_http(sandbox.http().hooks, request);
        Call::P3 {
            request,
            request_io: Box::pin(request_io),
            respond,
        }
    }

    /// Calls the guest's `handle` and returns once the guest is done with
    /// the request: for 0.2 when `handle` returns; for 0.3, whose guest
    /// writes its body after `handle` has returned the response, once the
    /// body has ended (or failed).
    async fn run(
        self,
        store: &mut Store<Sandbox>,
        proxy: &Proxy,
        body_end: &mut BodyEnd,
    ) -> wasmtime::Result<()> {
        match (self, proxy) {
            (Call::P2 { incoming, outparam }, Proxy::P2(proxy)) => {
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(store, incoming, outparam)
                    .await
            }
            (call @ Call::P3 { .. }, Proxy::P3(service)) => {
                store
                    .run_concurrent(async |accessor| call.run_in(accessor, service, body_end).await)
                    .await?
            }
            _ => Err(wasmtime::format_err!(
                "the instance does not serve the world its request was made for"
            )),
        }
    }
}

impl Call {
    /// Calls a 0.3 guest's `handle` in its store's event loop and returns
    /// once the response body has ended (or failed), or the guest answered
    /// with an error code.
    pub(crate) async fn run_in(
        self,
        accessor: &Accessor<Sandbox>,
        service: &p3::bindings::Service,
        body_end: &mut BodyEnd,
    ) -> wasmtime::Result<()> {
        let Call::P3 {
            request,
            request_io,
            respond,
        } = self
        else {
            return Err(wasmtime::format_err!(
                "a 0.2 request cannot be served by a 0.3 instance"
            ));
        };
        match service.handle(accessor, request).await? {
            Ok(response) => {
                let response =
                    accessor.with(|mut store| response.into_http(&mut store, request_io))?;
                respond.send(Ok(response));
                body_end.wait().await;
            }
            Err(code) => respond.send(Err(code.into())),
        }
        Ok(())
    }
}

/// `request` with `scheme://host` in its URI, the host from its `Host` header.
fn with_absolute_uri<B>(request: hyper::Request<B>, scheme: Scheme) -> hyper::Request<B> {
    let (mut head, body) = request.into_parts();
    let authority = head
        .headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<http::uri::Authority>().ok());
    if let Some(authority) = authority {
        let mut parts = std::mem::take(&mut head.uri).into_parts();
        parts.scheme = Some(match scheme {
            Scheme::Https => http::uri::Scheme::HTTPS,
            _ => http::uri::Scheme::HTTP,
        });
        parts.authority = Some(authority);
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        head.uri = http::Uri::from_parts(parts).unwrap_or_default();
    }
    hyper::Request::from_parts(head, body)
}

pub(crate) fn instantiation_failure(error: wasmtime::Error) -> GuestFailure {
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        GuestFailure::PoolExhausted
    } else {
        GuestFailure::Instantiation(error)
    }
}

pub(crate) fn trap_failure(
    trap: wasmtime::Error,
    memory_limit_hit: bool,
    limit_bytes: usize,
) -> GuestFailure {
    if memory_limit_hit {
        return GuestFailure::MemoryLimit { limit_bytes, trap };
    }
    match trap.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => GuestFailure::StackOverflow(trap),
        _ => GuestFailure::Trap(trap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guest_done_before_its_head_is_returned_gets_no_task() {
        let (sender, receiver) = oneshot::channel();
        let guest: GuestRun = Box::pin(async move {
            let _ = sender.send(7);
            Ok(())
        });
        let (head, finished) = run_until_head(guest, receiver).await;
        assert_eq!(head.ok(), Some(7));
        assert!(matches!(finished, Finished::Done(Ok(()))));
    }

    #[tokio::test]
    async fn a_guest_at_work_after_its_head_goes_on_in_a_task() {
        let (sender, receiver) = oneshot::channel();
        let (go, wait) = oneshot::channel::<()>();
        let guest: GuestRun = Box::pin(async move {
            let _ = sender.send(7);
            let _ = wait.await;
            Err(GuestFailure::NoResponse)
        });
        let (head, finished) = run_until_head(guest, receiver).await;
        assert_eq!(head.ok(), Some(7));
        assert!(matches!(finished, Finished::Task(_)));
        go.send(()).expect("the guest waits");
        assert!(matches!(
            finished.outcome().await,
            Err(GuestFailure::NoResponse)
        ));
    }

    #[tokio::test]
    async fn a_panic_under_the_guest_fails_its_request_only() {
        let (sender, receiver) = oneshot::channel::<u8>();
        let guest: GuestRun = Box::pin(async move {
            let _sender = sender;
            panic!("boom");
        });
        let (head, finished) = run_until_head(guest, receiver).await;
        assert!(head.is_err(), "the head's sender went with the guest");
        match finished.outcome().await {
            Err(GuestFailure::Task { cause }) => assert_eq!(cause, "it panicked: boom"),
            _ => panic!("not a task failure"),
        }
    }

    #[tokio::test]
    async fn a_guest_whose_caller_is_dropped_runs_to_its_end() {
        let (sender, receiver) = oneshot::channel::<u8>();
        let (go, wait) = oneshot::channel::<()>();
        let (ended, end) = oneshot::channel();
        let guest: GuestRun = Box::pin(async move {
            let _sender = sender;
            let _ = wait.await;
            let _ = ended.send(());
            Ok(())
        });
        let caller = run_until_head(guest, receiver);
        // The caller waits for a head that does not come; then its client goes.
        let waited = tokio::time::timeout(Duration::from_millis(20), caller).await;
        assert!(waited.is_err());
        go.send(()).expect("the guest still waits, in a task now");
        end.await.expect("the guest ran to its end");
    }
}
