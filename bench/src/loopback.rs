//! One HTTP/1.1 `GET` over a fresh loopback TCP connection, by hand: the
//! probes poll in a tight loop, so each attempt must cost only a connect, a
//! write and a read, with nothing (pools, DNS, runtimes) in between.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// How long one attempt may wait for the server, connect and answer each.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a probe sends its requests: `http://HOST:PORT/PATH`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resolved address.
    pub address: SocketAddr,
    /// `HOST:PORT`, for the `Host` header.
    pub authority: String,
    /// The request target, e.g. `/api/catalog/42`.
    pub path: String,
}

impl Target {
    /// Parses a plain `http://` URL; the host must resolve locally.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("{url:?} is not an http:// URL"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let address = authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{authority:?} does not resolve"))?;
        Ok(Self {
            address,
            authority: authority.to_owned(),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
        })
    }
}

/// The parts of an answer the probes look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// `x-component-digest`, the version of the component that answered (wasm-handler only).
    pub component_digest: Option<String>,
}

/// Sends `GET` to `target` on a new connection and reads the whole answer.
/// The client closes first, so the `TIME_WAIT` socket is the client's and a
/// server restarted on the same port can bind it again.
pub fn get(target: &Target) -> io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&target.address, ATTEMPT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(ATTEMPT_TIMEOUT))?;
    // One write, one segment: `write!` on the stream would send each piece apart.
    let request = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nx-correlation-id: bench-probe\r\n\r\n",
        target.path, target.authority
    );
    stream.write_all(request.as_bytes())?;

    let mut buffer = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if read_more(&mut stream, &mut buffer)? == 0 {
            return Err(unexpected("the connection closed before the response head"));
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|_| unexpected("the response head is not UTF-8"))?;
    let answer = parse_head(head)?;

    // Read the body, so the server is done with the request before we close.
    let body_length = header(head, "content-length").and_then(|value| value.parse::<usize>().ok());
    let chunked = header(head, "transfer-encoding").is_some_and(|value| value.contains("chunked"));
    if answer.status != 304 && answer.status != 204 {
        if let Some(length) = body_length {
            while buffer.len() < head_end + length {
                if read_more(&mut stream, &mut buffer)? == 0 {
                    return Err(unexpected("the connection closed inside the body"));
                }
            }
        } else if chunked {
            while !buffer[head_end..].ends_with(b"0\r\n\r\n") {
                if read_more(&mut stream, &mut buffer)? == 0 {
                    return Err(unexpected("the connection closed inside the body"));
                }
            }
        } else {
            stream.read_to_end(&mut buffer)?;
        }
    }
    Ok(answer)
}

/// Serves one connection as a collector that takes everything: reads each
/// request (head, then a `Content-Length` body) and answers `200` with an
/// empty body (an empty OTLP export response), until the client closes.
pub fn answer_each_request(mut stream: TcpStream) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            match read_more(&mut stream, &mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let body = header(&head, "content-length").and_then(|length| length.parse::<usize>().ok());
        let request_end = head_end + body.unwrap_or(0);
        while buffer.len() < request_end {
            match read_more(&mut stream, &mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        buffer.drain(..request_end);
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer).is_err() {
            return;
        }
    }
}

fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0; 4096];
    let read = stream.read(&mut chunk)?;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read)
}

fn parse_head(head: &str) -> io::Result<Answer> {
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| unexpected("no status code in the response"))?;
    Ok(Answer {
        status,
        component_digest: header(head, "x-component-digest").map(str::to_owned),
    })
}

/// The value of the first header called `name` (case-insensitive) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn unexpected(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_url() {
        let target = Target::parse("http://127.0.0.1:8080/api/catalog/42").expect("a URL");
        assert_eq!(target.address, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.path, "/api/catalog/42");
        assert_eq!(
            Target::parse("http://127.0.0.1:8080").expect("a URL").path,
            "/"
        );
        assert!(Target::parse("https://127.0.0.1:8080/").is_err());
    }

    #[test]
    fn reads_status_and_digest() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Component-Digest: sha256:ab\r\n\r\n";
        assert_eq!(
            parse_head(head).expect("a head"),
            Answer {
                status: 200,
                component_digest: Some("sha256:ab".to_owned())
            }
        );
        assert_eq!(header(head, "content-length"), Some("3"));
        assert!(parse_head("garbage\r\n\r\n").is_err());
    }

    #[test]
    fn gets_from_a_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("an address");
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("a connection");
            let mut request = Vec::new();
            while find(&request, b"\r\n\r\n").is_none() {
                read_more(&mut stream, &mut request).expect("a request");
            }
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-component-digest: d1\r\n\r\nhello",
                )
                .expect("an answer");
        });
        let answer =
            get(&Target::parse(&format!("http://{address}/x")).expect("a URL")).expect("an answer");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.component_digest.as_deref(), Some("d1"));
        server.join().expect("the server finished");
    }
}
