//! The request mix: every kind of request the run sends, how often, and
//! what each must get back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use test_harness::functions_host::Forward;
use test_harness::http::{self as client, Response};

use crate::checks::{
    Outcome, catalog_item, expect_correlation_id, expect_status, judge, plain_ok, problem,
    status_label,
};
use crate::{MAX_HEADER_SIZE, MAX_MEMORY_MIB, MAX_REQUEST_BODY, MAX_TARGET, REQUEST_TIMEOUT};

/// Size of the streamed large body.
const LARGE_BODY_MIB: usize = 4;
/// What `trap-after-head` promises in its `content-length` before it traps.
const TRAP_AFTER_HEAD_PROMISED: usize = 1 << 20;
/// A `504` must arrive within this (the 1 s deadline plus slack for a busy machine).
const DEADLINE_CUT_WITHIN: Duration = Duration::from_secs(3);
/// How long a raw exchange waits for more bytes before it takes the reply as complete.
const RAW_QUIET: Duration = Duration::from_secs(2);
/// How long an overload round's requests hold their instance (under the 1 s deadline).
pub(crate) const OVERLOAD_HOLD_MS: u64 = 800;

/// One kind of request, with one expected outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
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
    pub(crate) fn describe(self) -> &'static str {
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
pub(crate) const MIX: &[(Kind, u32)] = &[
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
pub(crate) const HEAVY: &[Kind] = &[Kind::Loop, Kind::Sleep, Kind::OutOfMemory, Kind::LargeBody];

/// A kind from [`MIX`], as likely as its weight.
pub(crate) fn pick_from_mix(rng: &mut fastrand::Rng) -> Kind {
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

/// An item of the catalog and its ETag.
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) etag: String,
}

/// The host under load and what the run learnt about it before starting.
pub(crate) struct Target {
    pub(crate) port: u16,
    pub(crate) max_instances: u32,
    /// Catalog items.
    pub(crate) items: Vec<Item>,
    /// Item ids the catalog does not have.
    pub(crate) unknown_ids: Vec<String>,
    pub(crate) next_request: AtomicU64,
}

impl Target {
    pub(crate) fn correlation_id(&self) -> String {
        format!("soak-{}", self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) async fn forward(
        &self,
        request: Forward,
        correlation_id: &str,
    ) -> std::io::Result<Response> {
        let request = request.header("x-correlation-id", correlation_id);
        client::send(self.port, request.into_request()).await
    }

    /// A GET of a fault at `path` that must fail in the guest: a 500 problem
    /// with our correlation id and `detail`.
    pub(crate) async fn guest_failure(&self, path: &str, id: &str, detail: &str) -> Outcome {
        let result = self.forward(Forward::get(path), id).await;
        judge(result, problem(500, Some(id), Some(detail)))
    }

    /// Sends one request of `kind` and judges what came back.
    pub(crate) async fn send(&self, kind: Kind, rng: &mut fastrand::Rng) -> Outcome {
        let id = self.correlation_id();
        let id = id.as_str();
        match kind {
            Kind::CatalogItem => {
                let Item { id: item, etag } = &self.items[rng.usize(..self.items.len())];
                let result = self
                    .forward(Forward::get(&format!("/api/catalog/{item}")), id)
                    .await;
                judge(result, |response| catalog_item(response, item, etag, id))
            }
            Kind::NotModified => {
                let Item { id: item, etag } = &self.items[rng.usize(..self.items.len())];
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
                let item = &self.items[rng.usize(..self.items.len())].id;
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
    pub(crate) async fn trap_after_head(&self, id: &str) -> Outcome {
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
