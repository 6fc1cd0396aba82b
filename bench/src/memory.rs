//! Memory of a payload-mode host under the largest envelopes: a probe sends
//! envelopes just under the host's 413 limit (the body of each a JSON array
//! of zeros in `Metadata`, the member a parser would inflate most), one
//! alone and then many at once, and samples the server's resident set
//! meanwhile and afterwards.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A process's resident set now (`VmRSS`) and its peak since the last
/// [`reset_peak`] (`VmHWM`), in bytes, from `/proc/PID/status`.
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let kib = line.strip_prefix(name)?.trim().strip_suffix("kB")?;
            kib.trim().parse::<u64>().ok().map(|kib| kib << 10)
        })
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets a process's `VmHWM` to its current RSS (`clear_refs` value 5,
/// Linux 4.0 and later), so a peak belongs to one phase.
pub fn reset_peak(pid: u32) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// A payload-mode invocation of `GET /api/catalog/42` whose `Metadata`
/// pads it with a JSON array of zeros to `bytes` bytes.
pub fn envelope(bytes: usize) -> Vec<u8> {
    let head = br#"{"Data":{"req":{"Url":"http://localhost/api/catalog/42","Method":"GET","Query":{},"Headers":{"Host":["localhost"]},"Params":{"item_id":"42"},"Identities":[]}},"Metadata":{"pad":[0"#;
    let tail = b"]}}";
    let mut envelope = Vec::with_capacity(bytes.max(head.len() + tail.len()));
    envelope.extend_from_slice(head);
    while envelope.len() + 2 + tail.len() <= bytes {
        envelope.extend_from_slice(b",0");
    }
    envelope.extend_from_slice(tail);
    envelope
}

/// Posts `envelope` to `path` as the Functions host does (chunked, no
/// `Content-Length`), reads the whole answer, and returns the status of the
/// response inside it (`Outputs.<binding>.statusCode`; a payload-mode POST
/// itself is always answered 200), or the POST's status if it has none.
pub fn post_envelope(address: SocketAddr, path: &str, envelope: &[u8]) -> io::Result<u16> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    for chunk in envelope.chunks(64 << 10) {
        write!(stream, "{:x}\r\n", chunk.len())?;
        stream.write_all(chunk)?;
        stream.write_all(b"\r\n")?;
    }
    stream.write_all(b"0\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let inner = answer.split_once("\"statusCode\":").and_then(|(_, rest)| {
        rest.trim_start()
            .get(..3)
            .and_then(|code| code.parse().ok())
    });
    inner
        .or_else(|| answer.get(9..12).and_then(|code| code.parse().ok()))
        .ok_or_else(|| io::Error::other("no status in the answer"))
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Envelopes sent at once.
    pub concurrent: usize,
    /// Their answers' statuses, counted: `(status, count)`.
    pub statuses: Vec<(u16, usize)>,
    /// The peak resident set during the phase (`VmHWM`, reset before it).
    pub peak: u64,
    /// Wall time from the first envelope sent to the last answer.
    pub elapsed: Duration,
    /// Resident set 1 s after the last answer.
    pub after_1s: u64,
    /// How long after the last answer RSS came within `settled` of idle,
    /// if it did within the wait.
    pub settled_after: Option<Duration>,
}

/// What one memory measurement sends, to which running server, and how it
/// judges the server's RSS afterwards.
pub struct Measurement<'a> {
    /// The server's process id.
    pub pid: u32,
    /// Where it listens.
    pub address: SocketAddr,
    /// The payload-mode function's path.
    pub path: &'a str,
    /// The envelope every sender posts.
    pub envelope: Arc<Vec<u8>>,
    /// Its resident set when idle.
    pub idle: u64,
    /// "Near idle": within this many bytes of [`Self::idle`].
    pub near: u64,
    /// Longest wait for RSS to come near idle.
    pub wait: Duration,
}

impl Measurement<'_> {
    /// Sends `concurrent` envelopes at once, then watches the RSS fall back.
    pub fn phase(&self, concurrent: usize) -> anyhow::Result<Phase> {
        let (pid, address) = (self.pid, self.address);
        reset_peak(pid)?;
        let start = Arc::new(Barrier::new(concurrent + 1));
        let senders: Vec<_> = (0..concurrent)
            .map(|_| {
                let (envelope, start) = (self.envelope.clone(), start.clone());
                let path = self.path.to_owned();
                std::thread::spawn(move || {
                    start.wait();
                    post_envelope(address, &path, &envelope)
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let mut statuses: Vec<(u16, usize)> = Vec::new();
        for sender in senders {
            let status = sender
                .join()
                .map_err(|_| anyhow::anyhow!("a sender panicked"))??;
            match statuses.iter_mut().find(|(seen, _)| *seen == status) {
                Some((_, count)) => *count += 1,
                None => statuses.push((status, 1)),
            }
        }
        let elapsed = started.elapsed();
        let answered = Instant::now();
        let exited = || anyhow::anyhow!("the server exited");
        let (_, peak) = rss(pid).ok_or_else(exited)?;
        let mut after_1s = 0;
        let mut settled_after = None;
        while answered.elapsed() < self.wait {
            let (now, _) = rss(pid).ok_or_else(exited)?;
            if settled_after.is_none() && now <= self.idle + self.near {
                settled_after = Some(answered.elapsed());
            }
            if after_1s == 0 && answered.elapsed() >= Duration::from_secs(1) {
                after_1s = now;
            }
            if settled_after.is_some() && after_1s > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        statuses.sort_unstable();
        Ok(Phase {
            concurrent,
            statuses,
            peak,
            elapsed,
            after_1s,
            settled_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_json_of_the_size_asked_for() {
        let envelope = envelope(100_000);
        assert!((99_998..=100_000).contains(&envelope.len()));
        let value: serde_json::Value = serde_json::from_slice(&envelope).expect("JSON");
        assert_eq!(value["Data"]["req"]["Method"], "GET");
        assert!(
            value["Metadata"]["pad"]
                .as_array()
                .is_some_and(|pad| pad.len() > 40_000)
        );
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let (now, peak) = rss(std::process::id()).expect("/proc/self/status");
        assert!(now > 0 && peak >= now);
    }
}
