//! The 0.3 twin of `misbehave`: one behaviour per route (the last path
//! segment), for the tests that hold the host to the same promises in both
//! worlds.
//!
//! | route | behaviour |
//! |---|---|
//! | `ok` | answers 200 `ok` |
//! | `count` | answers how many requests this instance has served, this one included |
//! | `hold?ms=N` | waits N ms without blocking its instance, then answers as `count` does |
//! | `log-headers` | prints each request header to stderr, then answers as `count` does |
//! | `request-line` | answers `<scheme> <authority> <path-with-query>` as the guest sees them |
//! | `stream?kib=N` | streams N KiB after `handle` has returned |
//! | `loop` | spins forever without yielding |
//! | `no-response` | never returns from `handle`: it waits in the host forever (a future nothing can wake is a guest bug wit-bindgen's runtime traps on) |
//! | `error-code` | returns an error code instead of a response |
//! | `trap` | panics before responding |
//! | `trap-after-head` | returns a head promising 1 MiB, writes 4 KiB, then panics |
//! | `oom` | allocates until allocation fails |

use test_guests_p3::{ErrorCode, Request, Response, Scheme, count_request, respond, response_head};

struct MisbehaveP3;

impl test_guests_p3::Guest for MisbehaveP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = count_request();
        let path_with_query = request.get_path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let route = path.rsplit('/').next().unwrap_or_default();
        eprintln!("started {route}");
        match route {
            "ok" => respond(200, "text/plain", b"ok".to_vec()),
            "count" => respond(200, "text/plain", served.to_string().into_bytes()),
            "log-headers" => {
                for (name, value) in request.get_headers().copy_all() {
                    eprintln!("header {name}: {}", String::from_utf8_lossy(&value));
                }
                respond(200, "text/plain", served.to_string().into_bytes())
            }
            "hold" => {
                let ms: u64 = parameter(query, "ms")
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(100);
                test_guests_p3::wasi::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
                respond(200, "text/plain", served.to_string().into_bytes())
            }
            "request-line" => {
                let scheme = match request.get_scheme() {
                    Some(Scheme::Http) => "http".to_owned(),
                    Some(Scheme::Https) => "https".to_owned(),
                    Some(Scheme::Other(other)) => other,
                    None => "-".to_owned(),
                };
                let authority = request.get_authority().unwrap_or_else(|| "-".to_owned());
                let line = format!("{scheme} {authority} {path_with_query}");
                respond(200, "text/plain", line.into_bytes())
            }
            "stream" => {
                let kib: usize = parameter(query, "kib")
                    .and_then(|kib| kib.parse().ok())
                    .unwrap_or(64);
                let (response, mut writer) =
                    response_head(200, "application/octet-stream", kib << 10)?;
                wit_bindgen::spawn_local(async move {
                    for _ in 0..kib {
                        let _ = writer.write_all(vec![b'x'; 1024]).await;
                    }
                });
                Ok(response)
            }
            "loop" => spin(),
            "no-response" => {
                test_guests_p3::wasi::clocks::monotonic_clock::wait_for(u64::MAX).await;
                respond(200, "text/plain", b"too late".to_vec())
            }
            "error-code" => Err(ErrorCode::InternalError(Some(
                "the business logic chose not to answer".to_owned(),
            ))),
            "trap" => panic!("the business logic hit a bug"),
            "trap-after-head" => {
                let (response, mut writer) =
                    response_head(200, "application/octet-stream", 1 << 20)?;
                wit_bindgen::spawn_local(async move {
                    let _ = writer.write_all(vec![b'x'; 4096]).await;
                    panic!("the body failed after its head");
                });
                Ok(response)
            }
            "oom" => exhaust_memory(),
            other => respond(404, "text/plain", format!("no route {other}").into_bytes()),
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

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn exhaust_memory() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(vec![1; 1 << 20]);
        std::hint::black_box(&held);
    }
}

test_guests_p3::export!(MisbehaveP3);

fn main() {}
