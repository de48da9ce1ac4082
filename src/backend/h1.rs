//! The HTTP/1.1 client protocol, on one connection, read in the task of the
//! request that uses it.
//!
//! Holds [`Conn`] (write a request, read a response head, then the body piece by
//! piece as it arrives: `content-length`, `chunked` or until the server closes),
//! [`Request`], [`Head`] and [`H1Error`]. Heads are parsed by `httparse`, the parser
//! hyper uses. Why not hyper's client: it keeps about 25 KB per connection (an
//! 8 KB header write buffer, an 8 KB read buffer and a 9 KB block of its request
//! channel, measured with heaptrack at 2,000 streams), and hands every body piece
//! over a channel. Here a connection is its socket and one read buffer that body
//! pieces are lent from, so 10,000 streams fit in a few KB each, and the bytes of
//! a token are parsed in the same poll as the read that stamped them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::http::Io;

/// Bytes a connection's read buffer starts with; it grows only for a head or a
/// chunk-size line that does not fit (body data is lent out piece by piece).
const INITIAL_BUFFER: usize = 4096;
/// The free space a read asks for at least.
const MIN_READ: usize = 1024;
/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Header lines parsed in a response head at most.
const MAX_HEADERS: usize = 100;

/// A request: method, path (with query), headers and the whole body.
#[derive(Clone, Debug)]
pub struct Request {
    /// GET, POST, …
    pub method: Method,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header fields, sent in this order (`content-length` is added).
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
}

impl Request {
    /// A request with no headers yet.
    pub fn new(method: Method, path: impl Into<String>, body: Bytes) -> Request {
        Request {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body,
        }
    }

    /// Adds a header; an invalid name or value is an error naming it.
    pub fn header(mut self, name: &str, value: &str) -> Result<Request, String> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid HTTP header name '{name}'"))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value for HTTP header '{name}'"))?;
        self.headers.append(n, v);
        Ok(self)
    }

    /// The request line, headers and blank line, as written.
    fn head_bytes(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(256 + self.headers.len() * 32);
        h.extend_from_slice(self.method.as_str().as_bytes());
        h.push(b' ');
        h.extend_from_slice(self.path.as_bytes());
        h.extend_from_slice(b" HTTP/1.1\r\n");
        for (k, v) in &self.headers {
            if k == http::header::CONTENT_LENGTH {
                continue;
            }
            h.extend_from_slice(k.as_str().as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(v.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() || !matches!(self.method, Method::GET | Method::HEAD) {
            h.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        h
    }
}

/// A response head: status and header fields.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: HeaderMap,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum H1Error {
    /// The connection was closed (or reset) before any byte of the response
    /// came: on a reused connection, the server had closed it while idle, so the
    /// request may be sent again on a new one.
    ClosedBeforeResponse(String),
    /// The socket failed, or closed in the middle of the response.
    Io(String),
    /// The server's bytes are not HTTP/1.1.
    Parse(String),
}

impl std::fmt::Display for H1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H1Error::ClosedBeforeResponse(s) | H1Error::Io(s) => f.write_str(s),
            H1Error::Parse(s) => write!(f, "the server's response is not valid HTTP/1.1: {s}"),
        }
    }
}

/// Where the body reader is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Body {
    /// No response being read; the connection can take a request.
    Idle,
    /// `n` bytes of a `content-length` body left.
    Length(u64),
    /// At a chunk-size line.
    ChunkSize,
    /// `n` bytes of the current chunk left.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk.
    Trailers,
    /// Until the server closes the connection.
    UntilClose,
    /// The body is complete; `Idle` again once the caller sees the end.
    Done,
}

/// One HTTP/1.1 connection: its socket, one read buffer and the exchange in progress.
pub struct Conn {
    io: Io,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    body: Body,
    keep_alive: bool,
    broken: bool,
    last_read: Arc<AtomicU64>,
}

impl Conn {
    /// A connection over `io`, whose reads stamp `last_read`.
    pub fn new(io: Io, last_read: Arc<AtomicU64>) -> Conn {
        Conn {
            io,
            buf: Vec::new(),
            start: 0,
            end: 0,
            body: Body::Idle,
            keep_alive: true,
            broken: false,
            last_read,
        }
    }

    /// When the socket last returned bytes ([`crate::clock::now_ns`] units).
    pub fn last_read_ns(&self) -> u64 {
        self.last_read.load(Ordering::Relaxed)
    }

    /// Whether this connection can take another request now: the last response
    /// was read to its end, the server did not ask to close, and (checked without
    /// waiting) the server has not closed it or sent anything unasked since.
    pub fn reusable(&mut self) -> bool {
        let between = matches!(self.body, Body::Idle | Body::Done);
        if self.broken || !self.keep_alive || !between || self.start != self.end {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut rb = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::Pin::new(&mut self.io).poll_read(&mut cx, &mut rb) {
            Poll::Pending => true,
            // End of stream, bytes nobody asked for, or an error: not reusable.
            Poll::Ready(_) => {
                self.broken = true;
                false
            }
        }
    }

    /// Writes `req` and reads the response head (skipping `1xx` heads). On
    /// success, the body is read with [`Conn::chunk`] or [`Conn::read_to_end`];
    /// after an error the connection is never reused.
    pub async fn send(&mut self, req: &Request) -> Result<Head, H1Error> {
        let r = self.exchange(req).await;
        self.broken |= r.is_err();
        r
    }

    async fn exchange(&mut self, req: &Request) -> Result<Head, H1Error> {
        if !matches!(self.body, Body::Idle | Body::Done) {
            return Err(H1Error::Io(
                "the connection is still reading a response".into(),
            ));
        }
        let closed = |e: std::io::Error| H1Error::ClosedBeforeResponse(e.to_string());
        let mut head = req.head_bytes();
        if head.len() + req.body.len() <= 16 * 1024 {
            head.extend_from_slice(&req.body);
            self.io.write_all(&head).await.map_err(closed)?;
        } else {
            self.io.write_all(&head).await.map_err(closed)?;
            self.io.write_all(&req.body).await.map_err(closed)?;
        }
        self.io.flush().await.map_err(closed)?;
        // The request's bytes are not kept while the answer is awaited.
        drop(head);
        let no_body = req.method == Method::HEAD;
        let mut got_any = false;
        loop {
            let (head, version_10) = self.read_head(&mut got_any).await?;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            self.body = body_kind(&head, no_body)?;
            let asked = {
                let mut opts = tokens(&head.headers, http::header::CONNECTION);
                if version_10 {
                    opts.any(|t| t == "keep-alive")
                } else {
                    !opts.any(|t| t == "close")
                }
            };
            self.keep_alive = asked && self.body != Body::UntilClose;
            return Ok(head);
        }
    }

    /// Reads one response head; `got_any` tells whether any response byte came.
    async fn read_head(&mut self, got_any: &mut bool) -> Result<(Head, bool), H1Error> {
        loop {
            if self.end > self.start {
                *got_any = true;
                let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut hdrs);
                match resp.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let version_10 = resp.version == Some(0);
                        let mut headers = HeaderMap::with_capacity(resp.headers.len());
                        for h in resp.headers.iter() {
                            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
                                H1Error::Parse(format!("invalid header name '{}'", h.name))
                            })?;
                            let value = HeaderValue::from_bytes(h.value).map_err(|_| {
                                H1Error::Parse(format!("invalid value of header '{}'", h.name))
                            })?;
                            headers.append(name, value);
                        }
                        self.start += n;
                        return Ok((Head { status, headers }, version_10));
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.end - self.start >= MAX_HEAD {
                            return Err(H1Error::Parse(format!(
                                "the response head is larger than {} KB",
                                MAX_HEAD / 1024
                            )));
                        }
                    }
                    Err(e) => {
                        let shown = String::from_utf8_lossy(
                            &self.buf[self.start..self.end.min(self.start + 80)],
                        )
                        .into_owned();
                        return Err(H1Error::Parse(format!("{e} (it began: {shown:?})")));
                    }
                }
            }
            match self.fill().await {
                Ok(0) if *got_any => {
                    return Err(H1Error::Io(
                        "the server closed the connection in the middle of the response head"
                            .into(),
                    ));
                }
                Ok(0) => {
                    return Err(H1Error::ClosedBeforeResponse(
                        "the server closed the connection without answering".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if *got_any => return Err(H1Error::Io(e.to_string())),
                Err(e) => return Err(H1Error::ClosedBeforeResponse(e.to_string())),
            }
        }
    }

    /// Reads more bytes into the buffer; returns how many (0: the server closed).
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < MIN_READ {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < MIN_READ {
                let len = (self.buf.len() * 2).max(INITIAL_BUFFER);
                self.buf.resize(len, 0);
            }
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next piece of the body as it arrives, with the time its last bytes
    /// were read; `None` at the end of the body (then the connection is free).
    /// After an error the connection is never reused.
    pub async fn chunk(&mut self) -> Result<Option<(u64, &[u8])>, H1Error> {
        let range = self.next_piece().await;
        self.broken |= range.is_err();
        let t = self.last_read_ns();
        Ok(range?.map(|(a, b)| (t, &self.buf[a..b])))
    }

    /// Where in the buffer the next piece of the body is, reading as needed.
    async fn next_piece(&mut self) -> Result<Option<(usize, usize)>, H1Error> {
        loop {
            match self.step()? {
                Step::Data(a, b) => return Ok(Some((a, b))),
                Step::End => return Ok(None),
                Step::More => {}
            }
            match self.fill().await {
                Ok(0) if self.body == Body::UntilClose => {
                    self.body = Body::Done;
                    self.keep_alive = false;
                }
                Ok(0) => {
                    return Err(H1Error::Io(
                        "the server closed the connection before the response was complete".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(H1Error::Io(e.to_string())),
            }
        }
    }

    /// The whole body; bytes beyond `cap` are read and dropped.
    pub async fn read_to_end(&mut self, cap: usize) -> Result<Vec<u8>, H1Error> {
        let mut out = Vec::new();
        while let Some((_, data)) = self.chunk().await? {
            let room = cap.saturating_sub(out.len());
            out.extend_from_slice(&data[..data.len().min(room)]);
        }
        Ok(out)
    }

    /// Advances the body parser over buffered bytes without reading.
    fn step(&mut self) -> Result<Step, H1Error> {
        loop {
            let avail = self.end - self.start;
            match self.body {
                Body::Idle => return Ok(Step::End),
                Body::Done => {
                    self.body = Body::Idle;
                    return Ok(Step::End);
                }
                Body::Length(0) => self.body = Body::Done,
                Body::Length(n) | Body::ChunkData(n) => {
                    if avail == 0 {
                        return Ok(Step::More);
                    }
                    let take = (n as usize).min(avail);
                    let a = self.start;
                    self.start += take;
                    let left = n - take as u64;
                    self.body = match self.body {
                        Body::Length(_) => Body::Length(left),
                        _ if left == 0 => Body::ChunkEnd,
                        _ => Body::ChunkData(left),
                    };
                    return Ok(Step::Data(a, a + take));
                }
                Body::UntilClose => {
                    if avail == 0 {
                        return Ok(Step::More);
                    }
                    let a = self.start;
                    self.start = self.end;
                    return Ok(Step::Data(a, self.end));
                }
                Body::ChunkSize => {
                    let Some(line) = self.line()? else {
                        return Ok(Step::More);
                    };
                    let size = parse_chunk_size(line)?;
                    self.body = if size == 0 {
                        Body::Trailers
                    } else {
                        Body::ChunkData(size)
                    };
                }
                Body::ChunkEnd => {
                    let Some(line) = self.line()? else {
                        return Ok(Step::More);
                    };
                    if !line.is_empty() {
                        return Err(H1Error::Parse(
                            "a chunk's data is not followed by CRLF".into(),
                        ));
                    }
                    self.body = Body::ChunkSize;
                }
                Body::Trailers => {
                    let Some(line) = self.line()? else {
                        return Ok(Step::More);
                    };
                    if line.is_empty() {
                        self.body = Body::Done;
                    }
                }
            }
        }
    }

    /// The next complete line (without its CRLF or LF) from the buffer, consumed.
    fn line(&mut self) -> Result<Option<&[u8]>, H1Error> {
        let s = &self.buf[self.start..self.end];
        match s.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let a = self.start;
                self.start += i + 1;
                let line = &self.buf[a..a + i];
                Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
            }
            None if s.len() > 4096 => Err(H1Error::Parse(
                "a chunk-size or trailer line is longer than 4 KB".into(),
            )),
            None => Ok(None),
        }
    }
}

enum Step {
    Data(usize, usize),
    More,
    End,
}

/// A chunk-size line: hex digits, then optional `;extensions`.
fn parse_chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let hex = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let hex = std::str::from_utf8(hex).unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| {
        H1Error::Parse(format!(
            "bad chunk size line {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        ))
    })
}

/// The comma-separated tokens of every `name` header, trimmed and lowercased
/// (`Connection: Keep-Alive, Upgrade` gives `keep-alive`, `upgrade`); empty ones skipped.
fn tokens(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// How the body of a response with `head` is delimited (RFC 9112 §6.3).
fn body_kind(head: &Head, no_body: bool) -> Result<Body, H1Error> {
    if no_body || head.status == 204 || head.status == 304 || (100..200).contains(&head.status) {
        return Ok(Body::Done);
    }
    if let Some(te) = tokens(&head.headers, http::header::TRANSFER_ENCODING).last() {
        return Ok(if te == "chunked" {
            Body::ChunkSize
        } else {
            Body::UntilClose
        });
    }
    let mut lengths = head.headers.get_all(http::header::CONTENT_LENGTH).iter();
    if let Some(v) = lengths.next() {
        let n: u64 = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| H1Error::Parse(format!("bad content-length {v:?}")))?;
        if lengths.any(|o| o != v) {
            return Err(H1Error::Parse("conflicting content-length headers".into()));
        }
        return Ok(Body::Length(n));
    }
    Ok(Body::UntilClose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A server on 127.0.0.1:0 that answers one connection's requests with the
    /// given raw responses, written in the given pieces; returns its address and
    /// the requests it read.
    async fn server(
        answers: Vec<Vec<&'static [u8]>>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            for pieces in answers {
                let mut req = Vec::new();
                let mut b = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut b).await.unwrap();
                    if n == 0 {
                        return got;
                    }
                    req.extend_from_slice(&b[..n]);
                }
                got.push(req);
                for p in pieces {
                    s.write_all(p).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            got
        });
        (addr, h)
    }

    async fn conn(addr: std::net::SocketAddr) -> Conn {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let last = Arc::new(AtomicU64::new(0));
        let timed =
            super::super::http::TimedStream::new(tcp, last.clone(), Default::default()).unwrap();
        Conn::new(Io::Plain(timed), last)
    }

    async fn body(c: &mut Conn) -> Result<Vec<u8>, H1Error> {
        c.read_to_end(usize::MAX).await
    }

    #[tokio::test]
    async fn chunked_split_anywhere_then_length_on_the_same_connection() {
        let (addr, srv) = server(vec![
            vec![
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n5\r\nhel",
                b"lo\r\n6;ext=1\r\n world\r",
                b"\n0\r\nx-trailer: y\r\n\r\n",
            ],
            vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"],
        ])
        .await;
        let mut c = conn(addr).await;
        let req = Request::new(Method::POST, "/v1/x", Bytes::from_static(b"{}"))
            .header("host", "h")
            .unwrap();
        let h = c.send(&req).await.unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.headers["content-type"], "text/event-stream");
        assert_eq!(body(&mut c).await.unwrap(), b"hello world");
        assert!(c.reusable());
        let h = c.send(&req).await.unwrap();
        assert_eq!(h.status, 404);
        assert_eq!(body(&mut c).await.unwrap(), b"abc");
        drop(c);
        let reqs = srv.await.unwrap();
        let first = String::from_utf8(reqs[0].clone()).unwrap();
        assert!(
            first.starts_with("POST /v1/x HTTP/1.1\r\nhost: h\r\n"),
            "{first}"
        );
        assert!(first.contains("content-length: 2\r\n\r\n{}"), "{first}");
    }

    #[tokio::test]
    async fn until_close_bodies_and_connection_close_are_not_reused() {
        let (addr, _srv) = server(vec![vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"]]).await;
        let mut c = conn(addr).await;
        let req = Request::new(Method::GET, "/", Bytes::new());
        c.send(&req).await.unwrap();
        // The test server keeps the socket open until it returns; it returns after
        // the first (only) answer, closing it.
        assert_eq!(body(&mut c).await.unwrap(), b"all of it");
        assert!(!c.reusable());
    }

    #[tokio::test]
    async fn a_body_cut_short_or_garbage_is_an_error_saying_so() {
        let (addr, _srv) = server(vec![vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ]])
        .await;
        let mut c = conn(addr).await;
        c.send(&Request::new(Method::GET, "/", Bytes::new()))
            .await
            .unwrap();
        let e = body(&mut c).await.unwrap_err();
        assert!(matches!(e, H1Error::Io(_)), "{e}");
        assert!(
            e.to_string().contains("before the response was complete"),
            "{e}"
        );
        assert!(!c.reusable());

        let (addr, _srv) = server(vec![vec![b"SSH-2.0-OpenSSH_9.6\r\n"]]).await;
        let mut c = conn(addr).await;
        let e = c
            .send(&Request::new(Method::GET, "/", Bytes::new()))
            .await
            .unwrap_err();
        assert!(matches!(e, H1Error::Parse(_)), "{e}");
        assert!(e.to_string().contains("SSH-2.0"), "{e}");

        let (addr, _srv) = server(vec![vec![]]).await;
        let mut c = conn(addr).await;
        let e = c
            .send(&Request::new(Method::GET, "/", Bytes::new()))
            .await
            .unwrap_err();
        assert!(matches!(e, H1Error::ClosedBeforeResponse(_)), "{e}");
    }
}
