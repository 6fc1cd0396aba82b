//! Concurrent reuse, for 0.3 routes that allow it: one instance serves up
//! to [`Reuse::max_concurrent`] requests at once, each a guest task in the
//! instance's one `Store::run_concurrent` event loop, as `wasmtime serve`
//! does with `--max-instance-concurrent-reuse-count`.
//!
//! An instance takes no new request after a failed body, a response never
//! set or the memory limit, after its N requests, its idle timeout or a swap
//! of its version: the requests it is serving finish (it drains), and then
//! it is dropped. A trap or a deadline cannot wait for that, since the store
//! is then poisoned or stuck: the instance is dropped at once, and the other
//! requests it was serving fail with it ([`GuestFailure::InstanceLost`];
//! bodies already started are cut off visibly). That is what sharing an
//! instance costs, besides its memory, and why it is opted into per route.
//!
//! The guest's stdout and stderr are one stream per instance, so its lines
//! cannot be told apart per request: they are logged in the instance's span,
//! with the secrets of every request it has served redacted, and a
//! payload-mode invocation's `Logs` do not carry them.
//!
//! An instance holds one admission permit and one pool slot however many
//! requests it serves, so admission's accounting holds as it is.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http_body_util::combinators::UnsyncBoxBody;
use opentelemetry::KeyValue;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, oneshot};
use tracing::{Instrument as _, Span};
use wasmtime::Store;
use wasmtime_wasi_http::handler::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::body::BodyReport;
use crate::component::ComponentVersion;
use crate::dispatch::{self, BodyEnd, Respond};
use crate::failure::GuestFailure;
use crate::guest_output::GuestOutput;
use crate::reuse::Reuse;
use crate::sandbox::Sandbox;
use crate::telemetry::{RequestTrace, span_names};

/// The request body as a shared instance takes it.
pub(crate) type SharedBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// The shared instances of one component version on its route.
pub(crate) struct SharedInstances {
    reuse: Reuse,
    state: Mutex<State>,
    /// Tells every waiting request each time an instance has room again or
    /// a new one starts.
    freed: Notify,
}

#[derive(Default)]
struct State {
    instances: Vec<Entry>,
    next_id: u64,
    retired: bool,
}

/// One instance that takes requests. Dropping it (and every lease's copy of
/// its sender) closes its queue: it finishes what it serves and is dropped.
struct Entry {
    id: u64,
    jobs: mpsc::UnboundedSender<Job>,
    output: GuestOutput,
    in_flight: u32,
    served: u32,
    idle_since: Instant,
}

/// Room for one request on a shared instance.
pub(crate) struct SharedLease {
    jobs: mpsc::UnboundedSender<Job>,
    output: GuestOutput,
    served: u32,
}

impl SharedLease {
    /// Where the instance's guest output goes.
    pub(crate) fn output(&self) -> &GuestOutput {
        &self.output
    }

    /// The requests its instance has been given, this one included.
    pub(crate) fn served(&self) -> u32 {
        self.served
    }

    /// Hands `job` to the instance; `Err` if it went down meanwhile.
    pub(crate) fn submit(self, job: Job) -> Result<(), GuestFailure> {
        self.jobs.send(job).map_err(|_| GuestFailure::InstanceLost {
            cause: "it was retired before this request started".to_owned(),
        })
    }
}

impl SharedInstances {
    /// None yet, under `reuse`; sharing only when `shared` (a 0.3 component
    /// whose route allows it).
    pub(crate) fn new(reuse: Reuse, shared: bool) -> Self {
        Self {
            reuse: if shared { reuse } else { Reuse::FRESH },
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        }
    }

    /// How its instances are reused.
    pub(crate) fn reuse(&self) -> Reuse {
        self.reuse
    }

    /// Whether requests share instances.
    pub(crate) fn enabled(&self) -> bool {
        self.reuse.concurrent()
    }

    /// Room on the least busy instance that has any, if one does.
    pub(crate) fn take(&self) -> Option<SharedLease> {
        if !self.enabled() {
            return None;
        }
        let mut state = self.lock();
        let index = (0..state.instances.len())
            .filter(|&index| state.instances[index].in_flight < self.reuse.max_concurrent)
            .min_by_key(|&index| state.instances[index].in_flight)?;
        let entry = &mut state.instances[index];
        entry.in_flight += 1;
        entry.served += 1;
        let lease = SharedLease {
            jobs: entry.jobs.clone(),
            output: entry.output.clone(),
            served: entry.served,
        };
        if entry.served >= self.reuse.max_requests {
            // Its last request: no more leases; it drains once this one is in.
            state.instances.swap_remove(index);
        }
        Some(lease)
    }

    /// Registers a new instance, whose guest output goes to `output`, with
    /// its first request leased; the instance's task takes the queue.
    pub(crate) fn start(&self, output: GuestOutput) -> (SharedLease, u64, Queue) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let lease = SharedLease {
            jobs: sender.clone(),
            output: output.clone(),
            served: 1,
        };
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        if !state.retired && self.reuse.max_requests > 1 {
            state.instances.push(Entry {
                id,
                jobs: sender,
                output,
                in_flight: 1,
                served: 1,
                idle_since: Instant::now(),
            });
        }
        drop(state);
        self.freed.notify_waiters();
        (lease, id, Queue(receiver))
    }

    /// A request on instance `id` is done; `clean` if it may serve on.
    fn done(&self, id: u64, clean: bool) {
        let mut state = self.lock();
        if let Some(index) = state.instances.iter().position(|entry| entry.id == id) {
            let entry = &mut state.instances[index];
            entry.in_flight -= 1;
            if entry.in_flight == 0 {
                entry.idle_since = Instant::now();
            }
            if !clean {
                let stopped = state.instances.swap_remove(index);
                drop(state);
                drop(stopped);
                return;
            }
        }
        drop(state);
        self.freed.notify_waiters();
    }

    /// Instance `id` takes no more requests.
    fn stop(&self, id: u64) {
        let mut state = self.lock();
        let stopped: Vec<_> = state
            .instances
            .extract_if(.., |entry| entry.id == id)
            .collect();
        drop(state);
        drop(stopped);
    }

    /// Resolves when some instance may have room again, for a request
    /// waiting for one: enable it before looking ([`SharedInstances::take`]),
    /// so that no notice between the look and the wait is missed.
    pub(crate) fn freed(&self) -> Notified<'_> {
        self.freed.notified()
    }

    /// Stops the instances idle past the timeout.
    pub(crate) fn expire(&self) {
        let timeout = self.reuse.idle_timeout;
        let mut state = self.lock();
        let expired: Vec<_> = state
            .instances
            .extract_if(.., |entry| {
                entry.in_flight == 0 && entry.idle_since.elapsed() >= timeout
            })
            .collect();
        drop(state);
        drop(expired);
    }

    /// Stops the longest idle instance, which then gives its slot and
    /// permit back; false when none is idle.
    pub(crate) fn evict_one(&self) -> bool {
        let mut state = self.lock();
        let Some(index) = (0..state.instances.len())
            .filter(|&index| state.instances[index].in_flight == 0)
            .min_by_key(|&index| state.instances[index].idle_since)
        else {
            return false;
        };
        let evicted = state.instances.swap_remove(index);
        drop(state);
        drop(evicted);
        true
    }

    /// No instance of this version takes another request: each finishes
    /// what it serves and is dropped.
    pub(crate) fn retire(&self) {
        let mut state = self.lock();
        state.retired = true;
        let stopped = std::mem::take(&mut state.instances);
        drop(state);
        drop(stopped);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing can panic while the lock is held; recover regardless.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The requests handed to one instance, in order.
pub(crate) struct Queue(mpsc::UnboundedReceiver<Job>);

/// One request for a shared instance.
pub(crate) struct Job {
    pub(crate) request: hyper::Request<SharedBody>,
    pub(crate) scheme: Scheme,
    pub(crate) respond: Respond,
    pub(crate) body_end: BodyEnd,
    pub(crate) report: Report,
}

/// What the instance tells about one request however it goes, kept apart
/// from the guest's task so it survives the instance.
pub(crate) struct Report {
    /// How the request ended, for [`dispatch::Finished`].
    pub(crate) outcome: oneshot::Sender<Result<(), GuestFailure>>,
    pub(crate) head_sent: Arc<AtomicBool>,
    /// Set before the store goes, when the body it is streaming is cut off.
    pub(crate) cut_off: Arc<AtomicBool>,
    pub(crate) log_span: Span,
    pub(crate) trace: RequestTrace,
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) request_body: BodyReport,
    /// Requests its instance has been given, this one included.
    pub(crate) served: u32,
}

impl Report {
    /// Tells the request's caller that the instance went down under it.
    fn fail(self, failure: GuestFailure) {
        if self.head_sent.load(Ordering::Acquire) {
            // The head is gone: the body is cut off; say why.
            self.trace.record_problem(&failure);
            self.log_span.in_scope(|| {
                tracing::error!(error = %failure, "The component failed after it sent the response head; the body was cut off");
            });
            let _ = self.outcome.send(Ok(()));
        } else {
            let _ = self.outcome.send(Err(failure));
        }
    }
}

/// Why an instance went down before its queue closed.
enum Down {
    /// A guest task trapped (the one serving `.0`, when known).
    Trap(Option<u64>, wasmtime::Error),
    /// A request ran past its deadline.
    Deadline,
}

/// A shared instance: its store, its first requests' queue, and what it
/// holds until it is gone.
pub(crate) struct Instance {
    pub(crate) version: Arc<ComponentVersion>,
    pub(crate) id: u64,
    pub(crate) store: Store<Sandbox>,
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) queue: Queue,
    pub(crate) timeout: Duration,
    pub(crate) max_memory_bytes: usize,
}

impl Instance {
    /// Instantiates the component and serves its queue until it closes or
    /// the instance goes down; then drops the store, and the permit after it.
    pub(crate) async fn run(self) {
        let Instance {
            version,
            id,
            mut store,
            permit,
            queue: Queue(mut jobs),
            timeout,
            max_memory_bytes,
        } = self;
        let instantiated =
            tokio::time::timeout(timeout, version.pre().instantiate_async(&mut store)).await;
        let service = match instantiated {
            Ok(Ok(Proxy::P3(service))) => service,
            failed => {
                version.shared().stop(id);
                drop(store);
                drop(permit);
                let mut failure = Some(match failed {
                    Ok(Ok(Proxy::P2(_))) => GuestFailure::Host(wasmtime::format_err!(
                        "a 0.2 instance cannot serve requests concurrently"
                    )),
                    Ok(Err(error)) => dispatch::instantiation_failure(error),
                    Err(_elapsed) => GuestFailure::Deadline(timeout),
                    Ok(Ok(Proxy::P3(_))) => unreachable!("matched above"),
                });
                jobs.close();
                while let Some(job) = jobs.recv().await {
                    job.report
                        .fail(failure.take().unwrap_or(GuestFailure::InstanceLost {
                            cause: "it could not be made".to_owned(),
                        }));
                }
                return;
            }
        };

        let reports: Mutex<HashMap<u64, Report>> = Mutex::new(HashMap::new());
        let accepted = Notify::new();
        let lock = || {
            reports
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let down = {
            let service = &service;
            let (version, accepted, lock, queue) = (&version, &accepted, &lock, &mut jobs);
            let serving = store.run_concurrent(async move |accessor| -> Result<(), Down> {
                let mut running = FuturesUnordered::new();
                let mut open = true;
                let mut next = 0_u64;
                loop {
                    tokio::select! {
                        // Ends first: a request that trapped takes the instance down
                        // before another starts.
                        biased;
                        Some((no, handled, body_end)) = running.next(), if !running.is_empty() => {
                            let ended: bool = match handled {
                                Ok(ended) => ended,
                                Err(trap) => return Err(Down::Trap(Some(no), trap)),
                            };
                            let Some(report) = lock().remove(&no) else { continue };
                            let memory_limit_hit = accessor.with(|mut store| store.get().memory_limit_hit());
                            let clean = ended && !memory_limit_hit && !report.request_body.failed();
                            if !clean {
                                report.log_span.in_scope(|| tracing::debug!("Retired a shared instance: its request did not end cleanly"));
                            }
                            version.shared().done(id, clean);
                            let _ = report.outcome.send(Ok(()));
                            // The request's mark in `finishing` goes once its room is free.
                            drop(body_end);
                        }
                        job = queue.recv(), if open => match job {
                            None => open = false,
                            Some(Job { request, scheme, respond, body_end, report }) => {
                                let no = next;
                                next += 1;
                                let span = report.log_span.clone();
                                let mut handling = report.trace.child(span_names::HANDLE);
                                handling.set(KeyValue::new("wasm_handler.instance.reused", report.served > 1));
                                handling.set(KeyValue::new("wasm_handler.instance.requests", i64::from(report.served)));
                                lock().insert(no, report);
                                accepted.notify_one();
                                running.push(async move {
                                    let mut body_end = body_end;
                                    let call = accessor.with(|mut store| {
                                        dispatch::Call::p3(store.get(), scheme, request, respond)
                                    });
                                    let handled = call.run_in(accessor, service, &mut body_end).await;
                                    let ended = handled.map(|()| body_end.ended());
                                    drop(handling);
                                    (no, ended, body_end)
                                }.instrument(span));
                            }
                        },
                        else => return Ok(()),
                    }
                }
            });
            let mut serving = pin!(serving);
            // Deadlines are watched out here: a guest stuck in a loop or a
            // blocking host call stops the event loop, not this.
            loop {
                let earliest = lock().values().map(|report| report.deadline).min();
                tokio::select! {
                    served = &mut serving => break match served {
                        Ok(Ok(())) => None,
                        Ok(Err(down)) => Some(down),
                        Err(trap) => Some(Down::Trap(None, trap)),
                    },
                    () = tokio::time::sleep_until(earliest.unwrap_or_else(tokio::time::Instant::now)), if earliest.is_some() => {
                        break Some(Down::Deadline);
                    }
                    () = accepted.notified() => {}
                }
            }
        };
        let Some(down) = down else {
            // Its queue closed and it served everything: done.
            drop(store);
            drop(permit);
            return;
        };

        version.shared().stop(id);
        let reports = std::mem::take(&mut *lock());
        // Before the store goes: dropping it is what ends the bodies.
        for report in reports.values() {
            if report.head_sent.load(Ordering::Acquire) {
                report.cut_off.store(true, Ordering::Release);
            }
        }
        let memory_limit_hit = store.data().memory_limit_hit();
        drop(store);
        drop(permit);
        let now = tokio::time::Instant::now();
        let others = reports.len().saturating_sub(1);
        let (mut culprit, cause) = match down {
            Down::Trap(Some(no), trap) => {
                let failure = dispatch::trap_failure(trap, memory_limit_hit, max_memory_bytes);
                (
                    Some((no, failure)),
                    "another request on it failed".to_owned(),
                )
            }
            // The event loop reports a guest task's trap, not whose it was.
            Down::Trap(None, trap) => {
                let failure = dispatch::trap_failure(trap, memory_limit_hit, max_memory_bytes);
                tracing::error!(error = %failure, requests = others + 1, "A shared instance failed; every request it was serving fails with it");
                let what = if memory_limit_hit {
                    "hit its memory limit"
                } else {
                    "trapped"
                };
                (
                    None,
                    format!("it {what} while it served this request and {others} other(s)"),
                )
            }
            Down::Deadline => (
                None,
                "another request on it ran past its deadline".to_owned(),
            ),
        };
        for (no, report) in reports {
            let failure = match culprit.take_if(|(culprit, _)| *culprit == no) {
                Some((_, failure)) => failure,
                None if report.deadline <= now => GuestFailure::Deadline(timeout),
                None => GuestFailure::InstanceLost {
                    cause: cause.clone(),
                },
            };
            report.fail(failure);
        }
        jobs.close();
        while let Ok(job) = jobs.try_recv() {
            job.report.fail(GuestFailure::InstanceLost {
                cause: cause.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Secrets;
    use crate::guest_output::Destination;

    fn instances(max_requests: u32, max_concurrent: u32) -> SharedInstances {
        SharedInstances::new(
            Reuse {
                max_requests,
                max_concurrent,
                idle_timeout: Duration::from_millis(20),
            },
            true,
        )
    }

    fn output() -> GuestOutput {
        GuestOutput::new(
            RequestTrace::untraced(Span::none()),
            Secrets::default(),
            Destination::Console,
        )
    }

    #[test]
    fn requests_share_an_instance_up_to_the_concurrency() {
        let shared = instances(100, 2);
        assert!(shared.take().is_none(), "none started yet");
        let (_first, id, _queue) = shared.start(output());
        let second = shared.take().expect("room for a second");
        assert_eq!(second.served(), 2);
        assert!(shared.take().is_none(), "two at once at most");
        shared.done(id, true);
        assert!(shared.take().is_some(), "room again");
    }

    #[test]
    fn an_instance_takes_its_last_request_and_then_none() {
        let shared = instances(3, 8);
        let (_first, _id, mut queue) = shared.start(output());
        let leases: Vec<_> = std::iter::from_fn(|| shared.take()).collect();
        assert_eq!(leases.len(), 2, "3 requests in all");
        drop((leases, _first));
        assert!(
            queue.0.try_recv().is_err() && queue.0.is_closed(),
            "its queue is closed once every lease is gone"
        );
    }

    #[test]
    fn an_unclean_request_stops_the_instance_taking_more() {
        let shared = instances(100, 8);
        let (_first, id, _queue) = shared.start(output());
        let _second = shared.take().expect("room");
        shared.done(id, false);
        assert!(shared.take().is_none());
    }

    #[test]
    fn idle_instances_expire_and_are_evicted_busy_ones_are_not() {
        let shared = instances(100, 8);
        let (_busy, _, _q1) = shared.start(output());
        let (_idle, idle_id, _q2) = shared.start(output());
        shared.done(idle_id, true);
        assert!(shared.evict_one(), "the idle one");
        assert!(!shared.evict_one(), "only a busy one is left");
        let (_, again, _q3) = shared.start(output());
        shared.done(again, true);
        std::thread::sleep(Duration::from_millis(30));
        shared.expire();
        assert!(!shared.evict_one(), "expired already");
        assert!(shared.take().is_some(), "the busy one has room and stays");
    }

    #[test]
    fn a_retired_version_takes_nothing_more() {
        let shared = instances(100, 8);
        let _first = shared.start(output());
        shared.retire();
        assert!(shared.take().is_none());
        let _late = shared.start(output());
        assert!(shared.take().is_none(), "a late start is not kept");
    }

    #[test]
    fn sharing_is_off_unless_allowed() {
        assert!(!instances(100, 1).enabled());
        assert!(!instances(1, 16).enabled());
        let off = SharedInstances::new(
            Reuse {
                max_requests: 100,
                max_concurrent: 16,
                idle_timeout: Duration::from_secs(1),
            },
            false,
        );
        assert!(!off.enabled() && off.take().is_none());
    }
}
