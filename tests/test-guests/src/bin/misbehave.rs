//! One component, one misbehaviour per route (the last path segment), so the
//! fault tests and the soak run drive every fault through one host:
//!
//! | route | behaviour |
//! |---|---|
//! | `ok` | answers 200 `ok` |
//! | `loop` | spins forever without yielding |
//! | `sleep` | blocks forever in the host (never responds) |
//! | `slow?ms=N` | answers 200 after N ms |
//! | `trap` | panics before responding |
//! | `trap-after-head` | sends a head promising 1 MiB, 4 KiB of body, then panics |
//! | `oom` | allocates until allocation fails |
//! | `stack-overflow` | recurses until the stack is exhausted |
//! | `no-response` | returns without a response |
//! | `large-body?mib=N` | streams N MiB |
//! | `env` | answers with the environment it sees, as JSON |
//! | `outgoing?authority=A&path=P` | GETs `http://A/P` and answers with the outcome |
//! | `echo-body` | reads the request body and answers with its length |
//! | `binary` | answers 200 with the 256 byte values, not UTF-8 text |
//! | `files` | tries to read and list files, answers with what happened |
//! | `socket?port=N` | tries a TCP connection to 127.0.0.1:N, answers with what happened |
//! | `scribble` | answers `clean` if a 512 KiB static is all zeros, else `dirty`, then fills it |
//! | `count` | answers how many requests this instance has served, this one included |

use test_guests::wasi::clocks::monotonic_clock;
use test_guests::wasi::http::outgoing_handler;
use test_guests::wasi::http::types::{Fields, OutgoingRequest, Scheme};
use test_guests::{IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam, respond};

struct Misbehave;

impl test_guests::Guest for Misbehave {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let route = path.rsplit('/').next().unwrap_or_default();
        eprintln!("started {route}");
        let served = test_guests::count_request();
        match route {
            "count" => respond(out, 200, "text/plain", served.to_string().as_bytes()),
            "ok" => respond(out, 200, "text/plain", b"ok"),
            "binary" => {
                let bytes: Vec<u8> = (0..=255).collect();
                respond(out, 200, "application/octet-stream", &bytes);
            }
            "loop" => spin(),
            "sleep" => monotonic_clock::subscribe_duration(u64::MAX).block(),
            "slow" => {
                let ms: u64 = parameter(query, "ms")
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(100);
                monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                respond(out, 200, "text/plain", b"slow");
            }
            "trap" => panic!("the business logic hit a bug"),
            "trap-after-head" => trap_after_head(out),
            "oom" => exhaust_memory(),
            "stack-overflow" => {
                recurse(0);
            }
            "no-response" => {}
            "scribble" => {
                let clean = scribble();
                respond(
                    out,
                    200,
                    "text/plain",
                    if clean { b"clean" } else { b"dirty" },
                );
            }
            "large-body" => {
                let mib: usize = parameter(query, "mib")
                    .and_then(|mib| mib.parse().ok())
                    .unwrap_or(1);
                stream(out, mib << 20);
            }
            "env" => {
                let environment: serde_json::Map<String, serde_json::Value> = std::env::vars()
                    .map(|(name, value)| (name, value.into()))
                    .collect();
                respond(
                    out,
                    200,
                    "application/json",
                    serde_json::Value::Object(environment)
                        .to_string()
                        .as_bytes(),
                );
            }
            "outgoing" => {
                let outcome = call_out(
                    parameter(query, "authority").unwrap_or(""),
                    parameter(query, "path").unwrap_or("/"),
                );
                respond(out, 200, "application/json", outcome.to_string().as_bytes());
            }
            "files" => {
                let outcome = serde_json::json!({
                    "read": describe(std::fs::read_to_string("/etc/hostname").map(|_| ())),
                    "list": describe(std::fs::read_dir("/").map(|_| ())),
                    "create": describe(std::fs::write("escape.txt", b"x")),
                });
                respond(out, 200, "application/json", outcome.to_string().as_bytes());
            }
            "socket" => {
                let port: u16 = parameter(query, "port")
                    .and_then(|port| port.parse().ok())
                    .unwrap_or(80);
                let outcome =
                    describe(std::net::TcpStream::connect(("127.0.0.1", port)).map(|_| ()));
                respond(
                    out,
                    200,
                    "application/json",
                    serde_json::json!({ "connect": outcome })
                        .to_string()
                        .as_bytes(),
                );
            }
            "echo-body" => {
                let length = read_body(&request);
                respond(
                    out,
                    200,
                    "application/json",
                    serde_json::json!({ "bytes": length })
                        .to_string()
                        .as_bytes(),
                );
            }
            other => respond(
                out,
                404,
                "text/plain",
                format!("no route {other}").as_bytes(),
            ),
        }
    }
}

fn parameter<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `"ok"`, or the error's text.
fn describe(result: std::io::Result<()>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    }
}

fn spin() {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn trap_after_head(out: ResponseOutparam) {
    let headers = Fields::from_list(&[(
        "content-length".to_owned(),
        (1u32 << 20).to_string().into_bytes(),
    )])
    .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    let body = response.body().expect("the body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("the stream");
    let _ = stream.blocking_write_and_flush(&[b'x'; 4096]);
    panic!("failed halfway through the body");
}

fn exhaust_memory() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Written, so the pages are really used.
        blocks.push(vec![1; 1 << 20]);
        std::hint::black_box(&blocks);
    }
}

/// Exhausts the wasm call stack. (Large locals would instead overflow the
/// shadow stack Rust keeps in linear memory, which traps as an out-of-bounds
/// access.)
#[allow(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(depth: u64) -> u64 {
    recurse(std::hint::black_box(depth + 1)).wrapping_add(depth)
}

fn stream(out: ResponseOutparam, total: usize) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("the body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("the stream");
    let chunk = [b'z'; 4096];
    let mut sent = 0;
    while sent < total {
        let len = chunk.len().min(total - sent);
        if stream.blocking_write_and_flush(&chunk[..len]).is_err() {
            return;
        }
        sent += len;
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

fn read_body(request: &IncomingRequest) -> usize {
    let Ok(body) = request.consume() else {
        return 0;
    };
    let Ok(stream) = body.stream() else { return 0 };
    let mut length = 0;
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        length += chunk.len();
    }
    length
}

fn call_out(authority: &str, path: &str) -> serde_json::Value {
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return serde_json::json!({ "error": format!("{code:?}") }),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => serde_json::json!({ "status": response.status() }),
        Some(Ok(Err(code))) => serde_json::json!({ "error": format!("{code:?}") }),
        other => serde_json::json!({ "error": format!("{other:?}") }),
    }
}

/// Whether a 512 KiB static (in the instance's linear memory, past the
/// stack) is all zeros, as in a fresh instance; then fills it, so an
/// instance reusing the memory unreset would see it dirty.
fn scribble() -> bool {
    static SCRATCH: std::sync::Mutex<[u8; 512 << 10]> = std::sync::Mutex::new([0; 512 << 10]);
    let mut scratch = SCRATCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let clean = scratch.iter().all(|&byte| byte == 0);
    scratch.fill(0xA5);
    clean
}

test_guests::export!(Misbehave);

fn main() {}
