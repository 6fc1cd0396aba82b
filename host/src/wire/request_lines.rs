//! Following a connection's requests on the read side, just far enough to
//! find each request line.
//!
//! RFC 9112 section 3.2 allows no fragment in a request target, but the
//! `http` crate drops one without a trace (`PathAndQuery::from_shared`
//! truncates at `#`), so `GET /a#b` would be served as `/a`. hyper gives no
//! raw target, so the bytes are looked at before hyper parses them: a `#` in
//! a request target is replaced by DEL, which httparse refuses in a target
//! (its `URI_MAP`), and hyper's bare 400 is then answered with the fragment
//! named (see [`super::ProblemsForUnparsed`]).
//!
//! To know where the next request line starts, the framing of each request
//! is followed the way hyper reads it: `Transfer-Encoding: chunked`, else
//! `Content-Length`, else no body. Anything hyper would refuse, or that ends
//! HTTP on the connection (CONNECT), stops the following: hyper closes such
//! connections itself.

/// Heads longer than this are past anything hyper accepts (the host's
/// buffer is a few times its header and target limits).
const MAX_HEAD_BYTES: usize = 256 << 10;
/// More fields than hyper parses (`MAX_HEADER_FIELDS`), with room.
const MAX_FIELDS: usize = 128;
/// A chunk-size line with its extensions; hyper refuses far shorter ones.
const MAX_CHUNK_LINE: usize = 4096;

/// Where a connection's read stream is.
#[derive(Debug, Default)]
pub(crate) struct RequestLines {
    state: State,
    /// The head (up to [`MAX_HEAD_BYTES`]) or chunk line read so far.
    buffered: Vec<u8>,
    /// The request line's progress within the head.
    line: Line,
    fragment_seen: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Head,
    Body(u64),
    ChunkLine,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    /// hyper refuses what follows, or it is not HTTP: nothing more to find.
    Unfollowed,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Empty lines before a request line (RFC 9112 section 2.2 lets a
    /// server ignore them, and httparse does).
    #[default]
    Leading,
    Method,
    Target,
    Done,
}

impl RequestLines {
    /// Whether a request target on this connection carried a fragment.
    pub(crate) fn fragment_seen(&self) -> bool {
        self.fragment_seen
    }

    /// Follows bytes just read, before hyper sees them, replacing any `#`
    /// in a request target.
    pub(crate) fn follow(&mut self, mut bytes: &mut [u8]) {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Unfollowed => return,
                State::Head => self.head_bytes(bytes),
                State::Body(left) => self.skip(left, bytes.len(), State::Head, State::Body),
                State::ChunkData(left) => {
                    self.skip(left, bytes.len(), State::ChunkDataEnd, State::ChunkData)
                }
                State::ChunkLine | State::ChunkDataEnd | State::Trailers => self.chunk_lines(bytes),
            };
            bytes = &mut bytes[used..];
        }
    }

    /// Passes over up to `left` bytes of data, of `available`: then `done`,
    /// or `more` of what is left.
    fn skip(&mut self, left: u64, available: usize, done: State, more: fn(u64) -> State) -> usize {
        let used = usize::try_from(left).map_or(available, |left| left.min(available));
        self.state = match left - used as u64 {
            0 => done,
            left => more(left),
        };
        used
    }

    /// Takes head bytes up to and including the next line end.
    fn head_bytes(&mut self, bytes: &mut [u8]) -> usize {
        let used = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |at| at + 1);
        // Past the request line, only where the head ends matters: this runs
        // over every head the host reads, so header lines are not walked
        // byte by byte.
        let request_line: &mut [u8] = if self.line == Line::Done {
            &mut []
        } else {
            &mut bytes[..used]
        };
        for byte in request_line {
            self.line = match (self.line, *byte) {
                (Line::Leading, b'\r' | b'\n') => Line::Leading,
                (Line::Leading, _) => Line::Method,
                (Line::Method, b' ') => Line::Target,
                (Line::Target, b' ' | b'\r' | b'\n') => Line::Done,
                (Line::Target, b'#') => {
                    *byte = 0x7f;
                    self.fragment_seen = true;
                    Line::Target
                }
                (line, _) => line,
            };
        }
        if self.buffered.len() + used > MAX_HEAD_BYTES {
            self.state = State::Unfollowed;
            return used;
        }
        self.buffered.extend_from_slice(&bytes[..used]);
        // A head ends with an empty line: only then is it worth parsing.
        let head_ended = self.buffered.ends_with(b"\n\n") || self.buffered.ends_with(b"\n\r\n");
        if head_ended && self.line == Line::Done {
            self.end_of_head();
        }
        used
    }

    /// Once the head's empty line is in, parses it: its framing decides what
    /// comes next.
    fn end_of_head(&mut self) {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut request = httparse::Request::new(&mut fields);
        let next = match request.parse(&self.buffered) {
            Ok(httparse::Status::Partial) => return,
            Ok(httparse::Status::Complete(_)) => framing(&request),
            Err(_) => State::Unfollowed,
        };
        self.state = next;
        self.buffered.clear();
        if self.buffered.capacity() > 16 << 10 {
            self.buffered.shrink_to(1024);
        }
        self.line = Line::Leading;
    }

    /// Chunk-size lines, the line end after a chunk's data, and trailers.
    fn chunk_lines(&mut self, bytes: &[u8]) -> usize {
        let (used, ended) = match memchr::memchr(b'\n', bytes) {
            Some(at) => (at + 1, true),
            None => (bytes.len(), false),
        };
        if self.buffered.len() + used > MAX_CHUNK_LINE {
            self.state = State::Unfollowed;
            return used;
        }
        self.buffered.extend_from_slice(&bytes[..used]);
        if !ended {
            return used;
        }
        let line = self.buffered.trim_ascii();
        self.state = match self.state {
            State::ChunkLine => match chunk_size(line) {
                Some(0) => State::Trailers,
                Some(size) => State::ChunkData(size),
                None => State::Unfollowed,
            },
            State::ChunkDataEnd if line.is_empty() => State::ChunkLine,
            State::Trailers if line.is_empty() => State::Head,
            State::Trailers => State::Trailers,
            _ => State::Unfollowed,
        };
        self.buffered.clear();
        used
    }
}

/// What follows a complete head, read the way hyper reads a request's
/// framing (`proto/h1/role.rs`, `Server::parse`).
fn framing(request: &httparse::Request<'_, '_>) -> State {
    if request.method == Some("CONNECT") {
        return State::Unfollowed;
    }
    let values = |name: &'static str| {
        request
            .headers
            .iter()
            .filter(move |field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value)
    };
    if let Some(last) = values("transfer-encoding").next_back() {
        let chunked = last
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return if chunked {
            State::ChunkLine
        } else {
            State::Unfollowed
        };
    }
    let mut lengths = values("content-length").map(|value| {
        std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    });
    match lengths.next() {
        None | Some(Some(0)) if lengths.next().is_none() => State::Head,
        Some(Some(length)) if lengths.all(|other| other == Some(length)) => State::Body(length),
        _ => State::Unfollowed,
    }
}

/// The size of a `chunk-size [ chunk-ext ]` line (RFC 9112 section 7.1).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let end = line
        .iter()
        .position(|&b| b == b';' || b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let digits = std::str::from_utf8(&line[..end]).ok()?;
    (!digits.is_empty())
        .then(|| u64::from_str_radix(digits, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows `stream` in reads of `step` bytes, as hyper would be given it.
    fn followed(stream: &[u8], step: usize) -> (Vec<u8>, bool) {
        let mut lines = RequestLines::default();
        let mut bytes = stream.to_vec();
        for chunk in bytes.chunks_mut(step) {
            lines.follow(chunk);
        }
        (bytes, lines.fragment_seen())
    }

    #[test]
    fn a_fragment_in_a_target_is_made_unparsable_and_nothing_else_changes() {
        for step in [1, 3, 7, 1000] {
            let (bytes, seen) = followed(b"GET /api/x#frag HTTP/1.1\r\nRef: a#b\r\n\r\n", step);
            assert!(seen, "step {step}");
            assert_eq!(
                bytes, b"GET /api/x\x7ffrag HTTP/1.1\r\nRef: a#b\r\n\r\n",
                "step {step}"
            );
        }
        let clean = b"GET /api/x?q=1 HTTP/1.1\r\nRef: a#b\r\n\r\n";
        assert_eq!(followed(clean, 5), (clean.to_vec(), false));
    }

    #[test]
    fn later_requests_are_found_past_each_kind_of_body() {
        let last = b"GET /c#d HTTP/1.1\r\nHost: x\r\n\r\n";
        let bodies: [&[u8]; 4] = [
            b"POST /a HTTP/1.1\r\nContent-Length: 12\r\n\r\nGET /#x HTTP",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n# # #\r\n0\r\nTrailer: #\r\n\r\n",
            b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ];
        for body in bodies {
            for step in [1, 2, 1000] {
                let stream = [body, last.as_slice()].concat();
                let (bytes, seen) = followed(&stream, step);
                assert!(seen, "{:?} step {step}", String::from_utf8_lossy(body));
                // Only the last request's target changed: bodies are untouched.
                assert_eq!(&bytes[..body.len()], body);
                assert_eq!(bytes.iter().filter(|&&b| b == 0x7f).count(), 1);
            }
        }
    }

    #[test]
    fn framing_hyper_refuses_stops_the_following() {
        for stream in [
            b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /#x HTTP/1.1\r\n\r\n"
                .as_slice(),
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /#x HTTP/1.1\r\n\r\n",
            b"CONNECT a:1 HTTP/1.1\r\n\r\nGET /#x HTTP/1.1\r\n\r\n",
        ] {
            assert!(!followed(stream, 4).1);
        }
    }
}
