//! Raw HTTP/1.1 over TCP, so a test controls every byte it sends (Host included) and sees every
//! byte of the answer: one request on a fresh connection, and the answer parsed into a [`Reply`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A raw HTTP exchange that takes longer than this fails the test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `bytes` on a fresh connection to `addr` and returns all it reads until the server closes
/// it (empty when it closed or reset without answering). Write errors are tolerated: the server
/// may hang up before reading everything. The write side stays open, as SDKs leave it: hyper
/// drops a connection whose client half-closes before the answer is ready.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set a read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("set a write timeout");
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("{addr} neither answered nor closed within {IO_TIMEOUT:?}")
        }
        Err(e) => panic!("reading from {addr}: {e}"),
    }
    out
}

/// One request on a fresh connection to `addr`; `Host: ADDR` unless `headers` has a Host.
/// Panics if what comes back is not an HTTP/1.1 response.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    request_with_body(addr, method, path, headers, "")
}

/// [`request`] with a body (and its `Content-Length`), e.g. a form for an OAuth token endpoint.
pub fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.push_str(body);
    let raw = send_raw(addr, head.as_bytes());
    Reply::parse(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: no HTTP response, got {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn parse(raw: &[u8]) -> Option<Reply> {
        let text = String::from_utf8_lossy(raw);
        let (head, rest) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()?
            .strip_prefix("HTTP/1.1 ")?
            .get(..3)?
            .parse()
            .ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)?
        } else {
            rest.to_owned()
        };
        Some(Reply {
            status,
            headers,
            body,
        })
    }

    /// The value of header `name` (the only one of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let mut values = self.headers.iter().filter(|(k, _)| *k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(
            values.next().is_none(),
            "more than one {name} header: {self}"
        );
        first
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self}"))
    }

    /// Asserts an error answer as the API promises it: this status, `Content-Type` exactly
    /// `application/json`, a body of exactly `{"code","message"}`, and `Cache-Control: no-store`.
    /// Returns the code.
    #[track_caller]
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self}");
        let json = self.json();
        let object = json
            .as_object()
            .unwrap_or_else(|| panic!("error body is not an object: {self}"));
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message"], "{self}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{self}"
        );
        json["code"].as_str().expect("code is a string").to_owned()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time with whole seconds, `2026-11-25T09:52:36Z`
/// (the only shape the API may send); None for anything else.
pub fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// The value of `name` in `url`'s query string; panics naming the URL when there is none.
#[track_caller]
pub fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .unwrap_or_else(|e| panic!("the query of {url} does not parse: {e}"));
    pairs
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}
