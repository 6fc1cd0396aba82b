//! The soak run: one `wasm-handler` process on loopback serving the catalog
//! at `/api` and the `misbehave` guest at `/api/faults`, a bounded mixed load
//! for a fixed time, then a report. `scripts/soak` builds and runs it.
//!
//! - `--workers` tasks (default 8) each keep one request in flight, picked at
//!   random from [`MIX`]: mostly good catalog requests, plus every fault that
//!   answers at once and every refusal of the host's limits;
//! - one more task cycles through the costly faults ([`HEAVY`]: a spinning
//!   loop and a sleep cut at the 1 s deadline, memory exhaustion, a large
//!   body), so at most one guest spins at a time on a small machine;
//! - right after the start and then every [`OVERLOAD_EVERY`] the load pauses
//!   while an overload round holds every instance with slow requests and
//!   checks that one more gets `503` with `Retry-After`. The first round comes
//!   at once so that every pool slot has held an instance before the first
//!   minute's RSS is taken: a slot keeps what its guests touched, up to a
//!   bound, so the slots' share of RSS rises while they fill and then stops;
//! - the host's RSS (`VmRSS`) is sampled every second.
//!
//! Every request has one expected outcome (status, and what the body or
//! headers must say). Exits non-zero when an answer was unexpected, a request
//! was lost (no answer where one was due), the average RSS of the last minute
//! (last 20% of a shorter run) is more than [`RSS_GROWTH_LIMIT_KIB`] above the
//! first's, or the host does not exit 0 on SIGTERM.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use tokio::sync::RwLock;
use wasm_handler_tests::functions_host::Forward;
use wasm_handler_tests::http::{self as client, Response};
use wasm_handler_tests::{HandlerProcess, guests};

/// Runs a bounded mixed load against one wasm-handler process and reports
/// requests, answers by status, unexpected answers, lost requests and RSS.
#[derive(Parser)]
struct Options {
    /// How long the load runs (`60s`, `5m`)
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Tasks sending the random mix, one request in flight each
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
}

/// The host's limits for the run. The deadline is short so that looping
/// guests are cut quickly; the body and header limits are small so that
/// refusing them is cheap.
const REQUEST_TIMEOUT: &str = "1s";
const MAX_MEMORY_MIB: usize = 32;
const MAX_REQUEST_BODY: usize = 64 << 10;
const MAX_HEADER_SIZE: usize = 8 << 10;
/// The host's fixed limit on the request target.
const MAX_TARGET: usize = 8 << 10;

/// Size of the streamed large body.
const LARGE_BODY_MIB: usize = 4;
/// What `trap-after-head` promises in its `content-length` before it traps.
const TRAP_AFTER_HEAD_PROMISED: usize = 1 << 20;
/// A `504` must arrive within this (the 1 s deadline plus slack for a busy machine).
const DEADLINE_CUT_WITHIN: Duration = Duration::from_secs(3);
/// How long a raw exchange waits for more bytes before it takes the reply as complete.
const RAW_QUIET: Duration = Duration::from_secs(2);

/// How often the overload round runs, how long its requests hold their
/// instance (under the 1 s deadline), and when the extra request is sent.
const OVERLOAD_EVERY: Duration = Duration::from_secs(20);
const OVERLOAD_FIRST_AFTER: Duration = Duration::from_secs(1);
const OVERLOAD_HOLD_MS: u64 = 800;
const OVERLOAD_PROBE_AFTER: Duration = Duration::from_millis(300);
/// Lets instances of the requests answered just before a pause go away.
const OVERLOAD_SETTLE: Duration = Duration::from_millis(100);

const RSS_EVERY: Duration = Duration::from_secs(1);
const RSS_WINDOW: Duration = Duration::from_secs(60);
const RSS_GROWTH_LIMIT_KIB: u64 = 8 << 10;
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// Console lines kept: the host logs a line or more per request.
const CONSOLE_LINES_KEPT: usize = 4000;
/// Failures printed with their detail.
const FAILURES_SHOWN: usize = 10;

/// One kind of request, with one expected outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    CatalogItem,
    NotModified,
    UnknownItem,
    BadItemId,
    WrongMethod,
    Health,
    OpenApi,
    NoRoute,
    GuestOk,
    GuestSlow,
    EchoBody,
    Trap,
    NoResponse,
    StackOverflow,
    TrapAfterHead,
    BodyTooLarge,
    ChunkedBodyTooLarge,
    HeaderTooLarge,
    TargetTooLong,
    MalformedHttp,
    Loop,
    Sleep,
    OutOfMemory,
    LargeBody,
    OverloadHold,
    OverloadRefused,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::CatalogItem => "GET /api/catalog/{id} -> 200",
            Kind::NotModified => "same, If-None-Match -> 304",
            Kind::UnknownItem => "unknown item -> 404",
            Kind::BadItemId => "bad item id -> 400",
            Kind::WrongMethod => "POST an item -> 405",
            Kind::Health => "GET /api/catalog/health -> 200",
            Kind::OpenApi => "GET /api/openapi.json -> 200",
            Kind::NoRoute => "no component's prefix -> 404",
            Kind::GuestOk => "faults/ok -> 200",
            Kind::GuestSlow => "faults/slow?ms=50 -> 200",
            Kind::EchoBody => "POST 64 KiB to faults/echo-body -> 200",
            Kind::Trap => "faults/trap -> 500",
            Kind::NoResponse => "faults/no-response -> 500",
            Kind::StackOverflow => "faults/stack-overflow -> 500",
            Kind::TrapAfterHead => "faults/trap-after-head -> cut body",
            Kind::BodyTooLarge => "declared body over 64 KiB -> 413",
            Kind::ChunkedBodyTooLarge => "chunked body over 64 KiB -> 413",
            Kind::HeaderTooLarge => "header over 8 KiB -> 431",
            Kind::TargetTooLong => "target over 8 KiB -> 414",
            Kind::MalformedHttp => "malformed HTTP -> 400",
            Kind::Loop => "faults/loop -> 504",
            Kind::Sleep => "faults/sleep -> 504",
            Kind::OutOfMemory => "faults/oom -> 500",
            Kind::LargeBody => "faults/large-body 4 MiB -> 200",
            Kind::OverloadHold => "overload: slow?ms=800 -> 200",
            Kind::OverloadRefused => "overload: one more -> 503",
        }
    }
}

/// The random mix of the workers, by weight: three quarters good catalog
/// requests, the rest faults and refusals that cost little.
const MIX: &[(Kind, u32)] = &[
    (Kind::CatalogItem, 40),
    (Kind::NotModified, 10),
    (Kind::UnknownItem, 4),
    (Kind::BadItemId, 4),
    (Kind::WrongMethod, 4),
    (Kind::Health, 3),
    (Kind::OpenApi, 2),
    (Kind::NoRoute, 2),
    (Kind::GuestOk, 3),
    (Kind::GuestSlow, 2),
    (Kind::EchoBody, 2),
    (Kind::Trap, 2),
    (Kind::NoResponse, 2),
    (Kind::StackOverflow, 2),
    (Kind::TrapAfterHead, 2),
    (Kind::BodyTooLarge, 1),
    (Kind::ChunkedBodyTooLarge, 1),
    (Kind::HeaderTooLarge, 2),
    (Kind::TargetTooLong, 1),
    (Kind::MalformedHttp, 2),
];

/// The costly faults, in turn on one task of their own.
const HEAVY: &[Kind] = &[Kind::Loop, Kind::Sleep, Kind::OutOfMemory, Kind::LargeBody];

/// What one request came to.
enum Outcome {
    /// The expected answer, labelled by status (or `cut body`).
    Expected(String),
    /// An answer, but not the expected one: its label and what was wrong.
    Unexpected(String, String),
    /// No answer where one was due.
    Lost(String),
}

/// Judges an answer with `check`; no answer is a lost request.
fn judge(
    result: std::io::Result<Response>,
    check: impl FnOnce(&Response) -> Result<(), String>,
) -> Outcome {
    match result {
        Err(error) => Outcome::Lost(error.to_string()),
        Ok(response) => match check(&response) {
            Ok(()) => Outcome::Expected(response.status.to_string()),
            Err(why) => Outcome::Unexpected(response.status.to_string(), why),
        },
    }
}

/// A problem+json with `status`, our correlation id (when the host could
/// read the head) and, when given, this `detail`.
fn problem(
    status: u16,
    correlation_id: Option<&str>,
    detail: Option<&str>,
) -> impl FnOnce(&Response) -> Result<(), String> {
    move |response| {
        let problem = response.problem(status, correlation_id)?;
        match detail {
            Some(detail) if problem["detail"] != detail => Err(format!(
                "detail {} instead of {detail:?}",
                problem["detail"]
            )),
            _ => Ok(()),
        }
    }
}

/// A 200 whose body is exactly `body`, with our correlation id.
fn plain_ok<'a>(
    body: &'a [u8],
    correlation_id: &'a str,
) -> impl FnOnce(&Response) -> Result<(), String> + 'a {
    move |response| {
        expect_status(response, 200)?;
        expect_correlation_id(response, correlation_id)?;
        if response.body != body {
            return Err(format!(
                "body {:?} instead of {:?}",
                String::from_utf8_lossy(&response.body),
                String::from_utf8_lossy(body)
            ));
        }
        Ok(())
    }
}

fn expect_status(response: &Response, status: u16) -> Result<(), String> {
    if response.status == status {
        Ok(())
    } else {
        let body = &response.body[..response.body.len().min(300)];
        Err(format!(
            "status {} instead of {status}: {:?}",
            response.status,
            String::from_utf8_lossy(body)
        ))
    }
}

fn expect_correlation_id(response: &Response, correlation_id: &str) -> Result<(), String> {
    match response.header("x-correlation-id") {
        Some(id) if id == correlation_id => Ok(()),
        other => Err(format!(
            "x-correlation-id {other:?} instead of {correlation_id:?}"
        )),
    }
}

/// The host under load and what the run learnt about it before starting.
struct Target {
    port: u16,
    max_instances: u32,
    /// Catalog items and their ETags.
    items: Vec<(String, String)>,
    /// Item ids the catalog does not have.
    unknown_ids: Vec<String>,
    next_request: AtomicU64,
}

impl Target {
    fn correlation_id(&self) -> String {
        format!("soak-{}", self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    async fn forward(&self, request: Forward, correlation_id: &str) -> std::io::Result<Response> {
        let request = request.header("x-correlation-id", correlation_id);
        client::send(self.port, request.into_request()).await
    }

    /// A GET of a fault at `path` that must fail in the guest: a 500 problem
    /// with our correlation id and `detail`.
    async fn guest_failure(&self, path: &str, id: &str, detail: &str) -> Outcome {
        let result = self.forward(Forward::get(path), id).await;
        judge(result, problem(500, Some(id), Some(detail)))
    }

    /// Sends one request of `kind` and judges what came back.
    async fn send(&self, kind: Kind, rng: &mut fastrand::Rng) -> Outcome {
        let id = self.correlation_id();
        let id = id.as_str();
        match kind {
            Kind::CatalogItem => {
                let (item, etag) = &self.items[rng.usize(..self.items.len())];
                let result = self
                    .forward(Forward::get(&format!("/api/catalog/{item}")), id)
                    .await;
                judge(result, |response| catalog_item(response, item, etag, id))
            }
            Kind::NotModified => {
                let (item, etag) = &self.items[rng.usize(..self.items.len())];
                let request =
                    Forward::get(&format!("/api/catalog/{item}")).header("if-none-match", etag);
                judge(self.forward(request, id).await, |response| {
                    expect_status(response, 304)?;
                    expect_correlation_id(response, id)?;
                    if response.body.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("a 304 with a {}-byte body", response.body.len()))
                    }
                })
            }
            Kind::UnknownItem => {
                let item = &self.unknown_ids[rng.usize(..self.unknown_ids.len())];
                let result = self
                    .forward(Forward::get(&format!("/api/catalog/{item}")), id)
                    .await;
                judge(result, problem(404, Some(id), None))
            }
            Kind::BadItemId => {
                let result = self
                    .forward(Forward::get(&format!("/api/catalog/x{}", rng.u32(..))), id)
                    .await;
                judge(result, problem(400, Some(id), None))
            }
            Kind::WrongMethod => {
                let (item, _) = &self.items[rng.usize(..self.items.len())];
                let request = Forward::new(::http::Method::POST, &format!("/api/catalog/{item}"));
                judge(self.forward(request, id).await, |response| {
                    problem(405, Some(id), None)(response)?;
                    match response.header("allow") {
                        Some("GET") => Ok(()),
                        other => Err(format!("Allow {other:?} on a 405")),
                    }
                })
            }
            Kind::Health => {
                let result = self.forward(Forward::get("/api/catalog/health"), id).await;
                judge(result, |response| {
                    expect_status(response, 200)?;
                    let health: serde_json::Value = serde_json::from_slice(&response.body)
                        .map_err(|e| format!("health is not JSON: {e}"))?;
                    if health["status"] == "ok" {
                        Ok(())
                    } else {
                        Err(format!("health says {health}"))
                    }
                })
            }
            Kind::OpenApi => {
                let result = self.forward(Forward::get("/api/openapi.json"), id).await;
                judge(result, |response| {
                    expect_status(response, 200)?;
                    let document: serde_json::Value = serde_json::from_slice(&response.body)
                        .map_err(|e| format!("the OpenAPI document is not JSON: {e}"))?;
                    if document["openapi"].is_string() {
                        Ok(())
                    } else {
                        Err("the OpenAPI document has no `openapi` version".to_owned())
                    }
                })
            }
            Kind::NoRoute => {
                let result = self
                    .forward(Forward::get(&format!("/nowhere/{}", rng.u32(..))), id)
                    .await;
                judge(
                    result,
                    problem(404, Some(id), Some("No component serves this path.")),
                )
            }
            Kind::GuestOk => {
                let result = self.forward(Forward::get("/api/faults/ok"), id).await;
                judge(result, plain_ok(b"ok", id))
            }
            Kind::GuestSlow => {
                let result = self
                    .forward(Forward::get("/api/faults/slow?ms=50"), id)
                    .await;
                judge(result, plain_ok(b"slow", id))
            }
            Kind::EchoBody => {
                let request = Forward::new(::http::Method::POST, "/api/faults/echo-body")
                    .body(vec![b'a'; MAX_REQUEST_BODY]);
                judge(self.forward(request, id).await, |response| {
                    expect_status(response, 200)?;
                    let echoed: serde_json::Value = serde_json::from_slice(&response.body)
                        .map_err(|e| format!("echo-body answer is not JSON: {e}"))?;
                    if echoed["bytes"] == MAX_REQUEST_BODY {
                        Ok(())
                    } else {
                        Err(format!("the guest read {echoed}"))
                    }
                })
            }
            Kind::Trap => {
                self.guest_failure(
                    "/api/faults/trap",
                    id,
                    "The component failed before it sent a response.",
                )
                .await
            }
            Kind::NoResponse => {
                self.guest_failure(
                    "/api/faults/no-response",
                    id,
                    "The component finished without sending a response.",
                )
                .await
            }
            Kind::StackOverflow => {
                self.guest_failure(
                    "/api/faults/stack-overflow",
                    id,
                    "The component overflowed its stack.",
                )
                .await
            }
            Kind::OutOfMemory => {
                let detail = format!("The component hit its memory limit of {MAX_MEMORY_MIB} MiB.");
                self.guest_failure("/api/faults/oom", id, &detail).await
            }
            Kind::TrapAfterHead => self.trap_after_head(id).await,
            Kind::BodyTooLarge => {
                let request = Forward::new(::http::Method::POST, "/api/faults/echo-body")
                    .body(vec![b'a'; MAX_REQUEST_BODY + 1]);
                let detail = format!("The request body is larger than {MAX_REQUEST_BODY} bytes.");
                judge(
                    self.forward(request, id).await,
                    problem(413, Some(id), Some(&detail)),
                )
            }
            Kind::ChunkedBodyTooLarge => {
                // No declared length: the host must count while streaming.
                let chunks = (0..=MAX_REQUEST_BODY >> 10)
                    .map(|_| Bytes::from(vec![b'c'; 1024]))
                    .collect();
                let result = client::send_chunked(self.port, "/api/faults/echo-body", chunks).await;
                // The harness's chunked request carries no correlation id.
                let detail = format!("The request body is larger than {MAX_REQUEST_BODY} bytes.");
                judge(result, problem(413, None, Some(&detail)))
            }
            Kind::HeaderTooLarge => {
                let request = Forward::get("/api/faults/ok")
                    .header("x-big", &"h".repeat(MAX_HEADER_SIZE + 1024));
                let detail =
                    format!("The request headers are larger than {MAX_HEADER_SIZE} bytes.");
                judge(
                    self.forward(request, id).await,
                    problem(431, Some(id), Some(&detail)),
                )
            }
            Kind::TargetTooLong => {
                let target = format!("/api/faults/ok?q={}", "q".repeat(MAX_TARGET + 1024));
                let detail = format!("The request target is longer than {MAX_TARGET} bytes.");
                judge(
                    self.forward(Forward::get(&target), id).await,
                    problem(414, Some(id), Some(&detail)),
                )
            }
            Kind::MalformedHttp => {
                const MALFORMED: &[&[u8]] = &[
                    b"GARBAGE\r\n\r\n",
                    b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n",
                    b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
                ];
                let bytes = MALFORMED[rng.usize(..MALFORMED.len())];
                match client::send_raw(self.port, bytes, RAW_QUIET).await {
                    Err(error) => Outcome::Lost(error.to_string()),
                    Ok(reply) if reply.status == Some(400) => Outcome::Expected("400".to_owned()),
                    Ok(reply) => Outcome::Unexpected(
                        status_label(reply.status),
                        format!("{:?} -> {:?}", String::from_utf8_lossy(bytes), reply.text()),
                    ),
                }
            }
            Kind::Loop | Kind::Sleep => {
                let route = if kind == Kind::Loop { "loop" } else { "sleep" };
                let started = Instant::now();
                let result = self
                    .forward(Forward::get(&format!("/api/faults/{route}")), id)
                    .await;
                let took = started.elapsed();
                let detail =
                    format!("The component did not answer within its {REQUEST_TIMEOUT} deadline.");
                judge(result, |response| {
                    problem(504, Some(id), Some(&detail))(response)?;
                    if took <= DEADLINE_CUT_WITHIN {
                        Ok(())
                    } else {
                        Err(format!("the 504 took {took:?}"))
                    }
                })
            }
            Kind::LargeBody => {
                let result = self
                    .forward(
                        Forward::get(&format!("/api/faults/large-body?mib={LARGE_BODY_MIB}")),
                        id,
                    )
                    .await;
                judge(result, |response| {
                    expect_status(response, 200)?;
                    if response.body.len() == LARGE_BODY_MIB << 20 {
                        Ok(())
                    } else {
                        Err(format!("a body of {} bytes", response.body.len()))
                    }
                })
            }
            Kind::OverloadHold => {
                let result = self
                    .forward(
                        Forward::get(&format!("/api/faults/slow?ms={OVERLOAD_HOLD_MS}")),
                        id,
                    )
                    .await;
                judge(result, plain_ok(b"slow", id))
            }
            Kind::OverloadRefused => {
                let result = self.forward(Forward::get("/api/faults/ok"), id).await;
                let busy = format!("All {} instances are busy", self.max_instances);
                judge(result, |response| {
                    let problem = response.problem(503, Some(id))?;
                    if response.header("retry-after") != Some("1") {
                        return Err(format!(
                            "Retry-After {:?} on a 503",
                            response.header("retry-after")
                        ));
                    }
                    match problem["detail"].as_str() {
                        Some(detail) if detail.contains(&busy) => Ok(()),
                        _ => Err(format!(
                            "detail {} does not say {busy:?}",
                            problem["detail"]
                        )),
                    }
                })
            }
        }
    }

    /// The guest sends a head promising 1 MiB and 4 KiB of it, then traps:
    /// the client gets the head and part of the body, then the end of the
    /// connection, never a complete response. Raw, to see exactly what arrived.
    async fn trap_after_head(&self, id: &str) -> Outcome {
        let request = format!(
            "GET /api/faults/trap-after-head HTTP/1.1\r\nHost: localhost:7071\r\nx-correlation-id: {id}\r\n\r\n"
        );
        let reply = match client::send_raw(self.port, request.as_bytes(), RAW_QUIET).await {
            Ok(reply) => reply,
            Err(error) => return Outcome::Lost(error.to_string()),
        };
        let body_length = reply
            .bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|head_end| reply.bytes.len() - head_end - 4);
        let start = String::from_utf8_lossy(&reply.bytes[..reply.bytes.len().min(400)]);
        let promised = format!("content-length: {TRAP_AFTER_HEAD_PROMISED}\r\n");
        match body_length {
            Some(received)
                if reply.status == Some(200)
                    && start.to_ascii_lowercase().contains(&promised)
                    && received < TRAP_AFTER_HEAD_PROMISED =>
            {
                Outcome::Expected("cut body".to_owned())
            }
            _ => Outcome::Unexpected(
                status_label(reply.status),
                format!(
                    "not a cut-off 200: {} bytes, starting {start:?}",
                    reply.bytes.len()
                ),
            ),
        }
    }
}

fn status_label(status: Option<u16>) -> String {
    status.map_or_else(|| "no status".to_owned(), |status| status.to_string())
}

/// A 200 with the item's JSON, its ETag and our correlation id.
fn catalog_item(response: &Response, item: &str, etag: &str, id: &str) -> Result<(), String> {
    expect_status(response, 200)?;
    expect_correlation_id(response, id)?;
    if response.header("etag") != Some(etag) {
        return Err(format!(
            "ETag {:?} instead of {etag}",
            response.header("etag")
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("item {item} is not JSON: {e}"))?;
    if body["item_id"] != item || body["correlation_id"] != id {
        return Err(format!("item {item} answered with {body}"));
    }
    Ok(())
}

/// Counts of one kind of request.
#[derive(Default)]
struct KindTally {
    requests: u64,
    by_label: BTreeMap<String, u64>,
    total_time: Duration,
    longest: Duration,
}

/// Everything counted during the run.
#[derive(Default)]
struct Tally {
    by_kind: BTreeMap<Kind, KindTally>,
    by_label: BTreeMap<String, u64>,
    unexpected: u64,
    lost: u64,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, kind: Kind, outcome: Outcome, took: Duration, at: Duration) {
        let label = match outcome {
            Outcome::Expected(label) => label,
            Outcome::Unexpected(label, why) => {
                self.unexpected += 1;
                self.note_failure(format!(
                    "{at:.1?} unexpected {} ({label}): {why}",
                    kind.describe()
                ));
                label
            }
            Outcome::Lost(why) => {
                self.lost += 1;
                self.note_failure(format!("{at:.1?} lost {}: {why}", kind.describe()));
                "lost".to_owned()
            }
        };
        let counts = self.by_kind.entry(kind).or_default();
        counts.requests += 1;
        counts.total_time += took;
        counts.longest = counts.longest.max(took);
        *counts.by_label.entry(label.clone()).or_default() += 1;
        *self.by_label.entry(label).or_default() += 1;
    }

    fn note_failure(&mut self, failure: String) {
        if self.failures.len() < FAILURES_SHOWN {
            eprintln!("[soak] {failure}");
            self.failures.push(failure);
        }
    }

    fn requests(&self) -> u64 {
        self.by_kind.values().map(|counts| counts.requests).sum()
    }
}

/// What every task of the run shares.
struct Run {
    target: Target,
    tally: Mutex<Tally>,
    /// Held shared for each request, exclusively by the overload round, which
    /// needs the host to itself.
    gate: RwLock<()>,
    started: Instant,
    ends: Instant,
}

impl Run {
    fn is_over(&self) -> bool {
        Instant::now() >= self.ends
    }

    /// Sends one request when the gate is open and counts its outcome.
    async fn request(&self, kind: Kind, rng: &mut fastrand::Rng) {
        let _open = self.gate.read().await;
        let sent = Instant::now();
        let outcome = self.target.send(kind, rng).await;
        self.record(kind, outcome, sent);
    }

    fn record(&self, kind: Kind, outcome: Outcome, sent: Instant) {
        self.tally.lock().expect("not poisoned").record(
            kind,
            outcome,
            sent.elapsed(),
            sent - self.started,
        );
    }
}

async fn mixed_worker(run: Arc<Run>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while !run.is_over() {
        let kind = pick_from_mix(&mut rng);
        run.request(kind, &mut rng).await;
    }
}

/// A kind from [`MIX`], as likely as its weight.
fn pick_from_mix(rng: &mut fastrand::Rng) -> Kind {
    let total_weight: u32 = MIX.iter().map(|(_, weight)| weight).sum();
    let mut pick = rng.u32(..total_weight);
    for (kind, weight) in MIX {
        if pick < *weight {
            return *kind;
        }
        pick -= weight;
    }
    unreachable!("the pick is below the total weight")
}

async fn heavy_worker(run: Arc<Run>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for kind in HEAVY.iter().cycle() {
        if run.is_over() {
            break;
        }
        run.request(*kind, &mut rng).await;
    }
}

/// After [`OVERLOAD_FIRST_AFTER`] and then every [`OVERLOAD_EVERY`]: pause
/// the load, hold every instance with a slow request, check that one more is
/// refused with 503, and let the load go on.
async fn overload_rounds(run: Arc<Run>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pause = OVERLOAD_FIRST_AFTER;
    loop {
        tokio::time::sleep(pause).await;
        pause = OVERLOAD_EVERY;
        if run.ends.saturating_duration_since(Instant::now()) < OVERLOAD_EVERY / 2 {
            break;
        }
        let _paused = run.gate.write().await;
        tokio::time::sleep(OVERLOAD_SETTLE).await;
        let holds: Vec<_> = (0..run.target.max_instances)
            .map(|_| {
                let run = run.clone();
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let mut rng = fastrand::Rng::new();
                    let outcome = run.target.send(Kind::OverloadHold, &mut rng).await;
                    run.record(Kind::OverloadHold, outcome, sent);
                })
            })
            .collect();
        tokio::time::sleep(OVERLOAD_PROBE_AFTER).await;
        let sent = Instant::now();
        let outcome = run.target.send(Kind::OverloadRefused, &mut rng).await;
        run.record(Kind::OverloadRefused, outcome, sent);
        for hold in holds {
            hold.await.expect("a hold request task");
        }
    }
}

/// The resident set of process `pid` in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_field(pid, "VmRSS:")
}

/// A number from `/proc/<pid>/status`, such as `VmRSS:` (in KiB) or `Threads:`.
fn proc_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors and threads of process `pid`: leaks of either show
/// as growth between the start and the end of the run.
fn fds_and_threads(pid: u32) -> (Option<u64>, Option<u64>) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|entries| entries.count() as u64);
    (fds, proc_status_field(pid, "Threads:"))
}

/// Samples the host's RSS every second until the run ends, with a progress
/// line now and then.
async fn sample_rss(run: Arc<Run>, pid: u32) -> Vec<(Duration, u64)> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(RSS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_progress = PROGRESS_EVERY;
    while !run.is_over() {
        ticks.tick().await;
        let at = run.started.elapsed();
        if let Some(kib) = rss_kib(pid) {
            samples.push((at, kib));
        }
        if at >= next_progress {
            next_progress += PROGRESS_EVERY;
            let tally = run.tally.lock().expect("not poisoned");
            eprintln!(
                "[soak] {:>4.0} s: {} requests, {} unexpected, {} lost, RSS {}",
                at.as_secs_f64(),
                tally.requests(),
                tally.unexpected,
                tally.lost,
                samples
                    .last()
                    .map_or("?".to_owned(), |(_, kib)| mib(*kib as f64)),
            );
        }
    }
    samples
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn average_kib(samples: &[(Duration, u64)], within: impl Fn(Duration) -> bool) -> Option<f64> {
    let chosen: Vec<u64> = samples
        .iter()
        .filter(|(at, _)| within(*at))
        .map(|(_, kib)| *kib)
        .collect();
    (!chosen.is_empty()).then(|| chosen.iter().sum::<u64>() as f64 / chosen.len() as f64)
}

/// A private copy of the guests, so that a rebuild during the run does not
/// swap them under the load.
fn app_folder() -> PathBuf {
    let folder = std::env::temp_dir().join(format!("wasm-handler-soak-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("creating the app folder");
    for (name, source) in [
        ("catalog.wasm", guests::CATALOG),
        ("misbehave.wasm", guests::MISBEHAVE),
    ] {
        std::fs::copy(source, folder.join(name))
            .unwrap_or_else(|e| panic!("copying {source}: {e}"));
    }
    folder
}

/// Item ids 1 to 99: the ones the catalog has, with their ETags, and the ones it has not.
async fn discover_catalog(port: u16) -> (Vec<(String, String)>, Vec<String>) {
    let (mut items, mut unknown) = (Vec::new(), Vec::new());
    for item in 1..100 {
        let response = Forward::get(&format!("/api/catalog/{item}"))
            .send(port)
            .await;
        match (response.status, response.header("etag")) {
            (200, Some(etag)) => items.push((item.to_string(), etag.to_owned())),
            (404, _) => unknown.push(item.to_string()),
            (status, _) => panic!("item {item}: unexpected {status} before the run"),
        }
    }
    assert!(
        !items.is_empty() && !unknown.is_empty(),
        "the catalog has items and gaps"
    );
    (items, unknown)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    // Twice what the load can hold at once, so only the overload round reaches it.
    let max_instances = (options.workers + 1) * 2;
    let folder = app_folder();
    let host_args = [
        "--route".to_owned(),
        "/api=catalog.wasm".to_owned(),
        "--route".to_owned(),
        "/api/faults=misbehave.wasm".to_owned(),
        "--request-timeout".to_owned(),
        REQUEST_TIMEOUT.to_owned(),
        "--max-instances".to_owned(),
        max_instances.to_string(),
        "--max-memory".to_owned(),
        format!("{MAX_MEMORY_MIB}MiB"),
        "--max-request-body".to_owned(),
        format!("{}KiB", MAX_REQUEST_BODY >> 10),
        "--max-header-size".to_owned(),
        format!("{}KiB", MAX_HEADER_SIZE >> 10),
    ];
    let mut handler = HandlerProcess::builder_in(&folder)
        .args(host_args.clone())
        .keep_console_lines(CONSOLE_LINES_KEPT)
        .start()
        .await;
    let (port, pid) = (handler.port(), handler.id());
    let (items, unknown_ids) = discover_catalog(port).await;
    let rss_at_start = rss_kib(pid).expect("the host's /proc status");
    let handles_at_start = fds_and_threads(pid);
    eprintln!(
        "[soak] wasm-handler serve {} (pid {pid}, port {port}); {} workers for {:?}",
        host_args.join(" "),
        options.workers,
        options.duration
    );

    let started = Instant::now();
    let run = Arc::new(Run {
        target: Target {
            port,
            max_instances,
            items,
            unknown_ids,
            next_request: AtomicU64::new(0),
        },
        tally: Mutex::default(),
        gate: RwLock::new(()),
        started,
        ends: started + options.duration,
    });
    let seed = fastrand::u64(..);
    let mut load: Vec<_> = (0..options.workers)
        .map(|n| tokio::spawn(mixed_worker(run.clone(), seed.wrapping_add(u64::from(n)))))
        .collect();
    load.push(tokio::spawn(heavy_worker(run.clone(), seed ^ 0xdead)));
    let overload = tokio::spawn(overload_rounds(run.clone(), seed ^ 0xbeef));
    let samples = sample_rss(run.clone(), pid).await;
    for task in load {
        task.await.expect("a load task");
    }
    overload.abort();
    let _ = overload.await;
    let ran_for = started.elapsed();

    // The load's last connections close, the host still serves, then drains
    // and exits 0 on SIGTERM.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let handles_at_end = fds_and_threads(pid);
    let health = Forward::get("/api/catalog/health").into_request();
    let still_serving = handler.is_running()
        && client::send(port, health)
            .await
            .is_ok_and(|response| response.status == 200);
    let signalled = Instant::now();
    handler.signal(15);
    let exit = handler.wait_for_exit(Duration::from_secs(30)).await;
    let shutdown_took = signalled.elapsed();
    let _ = std::fs::remove_dir_all(&folder);

    let tally = run.tally.lock().expect("not poisoned");
    let window = RSS_WINDOW.min(options.duration / 5);
    let first = average_kib(&samples, |at| at < window);
    let last = average_kib(&samples, |at| at + window > ran_for);
    let peak = samples.iter().map(|(_, kib)| *kib).max();
    let growth_kib = match (first, last) {
        (Some(first), Some(last)) => Some(last - first),
        _ => None,
    };
    let rss_ok = growth_kib.is_some_and(|growth| growth <= RSS_GROWTH_LIMIT_KIB as f64);
    let passed =
        tally.unexpected == 0 && tally.lost == 0 && rss_ok && still_serving && exit.success();

    let mut report = String::new();
    let requests = tally.requests();
    let _ = writeln!(
        report,
        "soak: {:.0} s, {} mixed workers + 1 heavy-fault worker + an overload round at {} s and every {} s, one wasm-handler process (pid {pid}) on loopback",
        ran_for.as_secs_f64(),
        options.workers,
        OVERLOAD_FIRST_AFTER.as_secs(),
        OVERLOAD_EVERY.as_secs()
    );
    let _ = writeln!(report, "host: wasm-handler serve {}", host_args.join(" "));
    let _ = writeln!(
        report,
        "requests: {requests} ({:.0}/s)",
        requests as f64 / ran_for.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "\n{:<40} {:>9}  {:>9} {:>9}  answers",
        "kind", "requests", "mean ms", "max ms"
    );
    for (kind, counts) in &tally.by_kind {
        let answers: Vec<String> = counts
            .by_label
            .iter()
            .map(|(label, count)| format!("{label}: {count}"))
            .collect();
        let _ = writeln!(
            report,
            "{:<40} {:>9}  {:>9.1} {:>9.1}  {}",
            kind.describe(),
            counts.requests,
            counts.total_time.as_secs_f64() * 1e3 / counts.requests as f64,
            counts.longest.as_secs_f64() * 1e3,
            answers.join(", ")
        );
    }
    let (good, errors): (Vec<_>, Vec<_>) = tally
        .by_label
        .iter()
        .partition(|(label, _)| label.parse::<u16>().is_ok_and(|status| status < 400));
    let listed = |answers: Vec<(&String, &u64)>| {
        let answers: Vec<String> = answers
            .into_iter()
            .map(|(label, count)| format!("{label}: {count}"))
            .collect();
        answers.join(", ")
    };
    let _ = writeln!(report, "\ngood answers: {}", listed(good));
    let _ = writeln!(report, "errors by status: {}", listed(errors));
    let _ = writeln!(report, "unexpected: {}", tally.unexpected);
    let _ = writeln!(report, "lost: {}", tally.lost);
    for failure in &tally.failures {
        let _ = writeln!(report, "  {failure}");
    }
    let show = |kib: Option<f64>| kib.map_or_else(|| "?".to_owned(), mib);
    let _ = writeln!(
        report,
        "RSS: at start {}, first {} s {} (mean), last {} s {} (mean), growth {}{} (limit {}), peak {}",
        mib(rss_at_start as f64),
        window.as_secs(),
        show(first),
        window.as_secs(),
        show(last),
        if growth_kib.is_some_and(|growth| growth >= 0.0) {
            "+"
        } else {
            ""
        },
        show(growth_kib),
        mib(RSS_GROWTH_LIMIT_KIB as f64),
        show(peak.map(|kib| kib as f64)),
    );
    let every = (options.duration / 10).max(RSS_EVERY);
    let timeline: Vec<String> = samples
        .iter()
        .scan(Duration::ZERO, |next, (at, kib)| {
            let due = *at >= *next;
            if due {
                *next = *at + every;
            }
            Some(due.then(|| format!("{:.0}s {:.1}", at.as_secs_f64(), *kib as f64 / 1024.0)))
        })
        .flatten()
        .collect();
    let _ = writeln!(report, "RSS over the run (MiB): {}", timeline.join(", "));
    let show_count = |count: Option<u64>| count.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let _ = writeln!(
        report,
        "open fds: {} at start, {} after the load; threads: {} at start, {} after the load",
        show_count(handles_at_start.0),
        show_count(handles_at_end.0),
        show_count(handles_at_start.1),
        show_count(handles_at_end.1),
    );
    let _ = writeln!(
        report,
        "after the load: {}; SIGTERM -> {exit} in {shutdown_took:.0?}",
        if still_serving {
            "still serving"
        } else {
            "NOT serving"
        },
    );
    let _ = writeln!(report, "result: {}", if passed { "PASS" } else { "FAIL" });
    if !passed && !exit.success() {
        let _ = writeln!(
            report,
            "host stderr (last lines):\n{}",
            tail(&handler.stderr(), 20)
        );
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.as_bytes());
    let _ = stdout.flush();
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn tail(lines: &[String], count: usize) -> String {
    lines[lines.len().saturating_sub(count)..].join("\n")
}
