//! The request path of the closed model for keep-alive HTTP/1.1 targets: a minimal client that
//! writes request bytes serialised once per attack and reads the response with `httparse`
//! (status line, headers, then the body framed by Content-Length, chunked encoding or the close),
//! as wrk does.
//!
//! Why by hand rather than hyper's client (the standards prefer a well-kept crate): a generator
//! spends its CPU on exactly what hyper does per request for generality — building a `Request`
//! and `HeaderMap`, encoding it, a dispatcher task and channel between the caller and the
//! connection, a body stream. Measured on nginx with `-c 50` (CPU time of the worker per request,
//! `bench/loadtest.sh`): 26.2 µs with hyper (goose stepping each request) against 11.0 µs for wrk,
//! which made ≥ 0.8× wrk unreachable. The parsing itself stays in `httparse` (hyper's parser).
//! Only what a load generator needs is here: no pipelining, no upgrades, bodies are read and
//! dropped (a gzip body is not decoded, as with hyper before). HTTPS is rustls over the same code (`crate::tls`). Redirects and anything this cannot
//! express (HTTP/2, no keep-alive, headers `http` rejects) go through reqwest.

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::spec::{AttackSpec, RequestSpec};
use crate::tls::{Stream, Tls};

/// Largest response head accepted; a bigger one is an error, not unbounded memory.
const MAX_HEAD: usize = 1 << 20;
const MAX_HEADERS: usize = 64;
const BUF: usize = 16 * 1024;

/// A request serialised once for the whole attack.
pub(crate) struct WireRequest {
    pub(crate) host: String,
    pub(crate) port: u16,
    tls: Option<Tls>,
    /// The URL, for resolving a redirect's Location.
    pub(crate) base: url::Url,
    bytes: Vec<u8>,
    /// A HEAD response has headers only, whatever its Content-Length says.
    head: bool,
}

impl WireRequest {
    /// `None` when this request needs reqwest (HTTP/2, no keep-alive, a header `http` rejects).
    pub(crate) fn new(spec: &AttackSpec, r: &RequestSpec) -> Option<Self> {
        if spec.http2 || spec.disable_keepalive {
            return None;
        }
        let url = url::Url::parse(&r.url).ok()?;
        let tls = match url.scheme() {
            "http" => None,
            "https" => {
                // The SNI follows the Host header, which hey's -host sets.
                let host = match r
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                {
                    Some((_, v)) => strip_port(v),
                    None => url.host_str()?.trim_matches(['[', ']']),
                };
                Some(Tls::new(host)?)
            }
            _ => return None,
        };
        let method = http::Method::from_bytes(r.method.as_bytes()).ok()?;
        let has = |name: &str| r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let mut head = format!(
            "{method} {} HTTP/1.1\r\n",
            &url[url::Position::BeforePath..url::Position::AfterQuery]
        );
        let mut line = |k: &str, v: &str| {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        };
        if !has("host") {
            line(
                "Host",
                &url[url::Position::BeforeHost..url::Position::AfterPort],
            );
        }
        if !has("user-agent") {
            line(
                "User-Agent",
                concat!("serin-loadtest/", env!("CARGO_PKG_VERSION")),
            );
        }
        if !spec.disable_compression && !has("accept-encoding") {
            line("Accept-Encoding", "gzip");
        }
        for (k, v) in &r.headers {
            // The same validation hyper applied: no CR/LF smuggling, valid token names.
            http::HeaderName::from_bytes(k.as_bytes()).ok()?;
            http::HeaderValue::from_str(v).ok()?;
            line(k, v);
        }
        let body = r.body.as_deref().unwrap_or_default();
        let body_expected = matches!(method, http::Method::POST | http::Method::PUT)
            || method == http::Method::PATCH;
        if (!body.is_empty() || body_expected)
            && !has("content-length")
            && !has("transfer-encoding")
        {
            line("Content-Length", &body.len().to_string());
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        Some(WireRequest {
            host: url.host_str()?.trim_matches(['[', ']']).to_string(),
            port: url.port_or_known_default()?,
            tls,
            base: url,
            bytes,
            head: method == http::Method::HEAD,
        })
    }

    /// Opens a connection for this request: TCP, then TLS for https.
    pub(crate) async fn connect(&self) -> Result<Stream, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connection error: {e}"))?;
        // Requests are written whole; Nagle would only hold the next one back.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(tls) => tls
                .handshake(tcp)
                .await
                .map_err(|e| format!("connection error: TLS handshake: {e}")),
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What the caller needs of a response (the body has been read and dropped).
#[derive(Debug, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Only read for a 3xx.
    pub(crate) location: Option<String>,
    /// False when the server closes the connection after this response.
    pub(crate) reusable: bool,
}

/// Why an exchange failed; the text is the key of the error distribution.
#[derive(Debug)]
pub(crate) enum WireError {
    Write(io::Error),
    Read(io::Error),
    /// The connection ended before a complete response.
    Closed,
    Invalid(String),
    Body(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Write(e) | WireError::Read(e) => write!(f, "request error: {e}"),
            WireError::Closed => {
                f.write_str("request error: connection closed before the response was complete")
            }
            WireError::Invalid(why) => write!(f, "request error: invalid response: {why}"),
            WireError::Body(why) => write!(f, "error reading the response body: {why}"),
        }
    }
}

/// How the body of a response ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    location: Option<String>,
    close: bool,
}

/// One keep-alive connection with its read buffer (bytes `start..end` are unread).
pub(crate) struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
        }
    }

    /// Sends `r` and reads its response in full.
    pub(crate) async fn exchange(&mut self, r: &WireRequest) -> Result<Reply, WireError> {
        // Bytes left from an earlier response would be read as this one's.
        self.start = 0;
        self.end = 0;
        self.stream
            .write_all(&r.bytes)
            .await
            .map_err(WireError::Write)?;
        self.stream.flush().await.map_err(WireError::Write)?;
        loop {
            let head = loop {
                if let Some(head) = self.parse_head(r.head)? {
                    break head;
                }
                self.fill(MAX_HEAD).await?;
            };
            self.start += head.len;
            // Informational responses (100 Continue, 103 Early Hints) precede the real one.
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            let reusable = match head.framing {
                Framing::Length(n) => {
                    self.skip(n).await?;
                    !head.close
                }
                Framing::Chunked => {
                    self.skip_chunked().await?;
                    !head.close
                }
                Framing::UntilClose => {
                    self.skip_to_close().await?;
                    false
                }
            };
            return Ok(Reply {
                status: head.status,
                location: head.location,
                reusable,
            });
        }
    }

    fn parse_head(&self, head_request: bool) -> Result<Option<Head>, WireError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.buf[self.start..self.end]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(WireError::Invalid(e.to_string())),
        };
        let status = resp.code.unwrap_or_default();
        // HTTP/1.0 closes unless it asks to keep the connection.
        let mut close = resp.version == Some(0);
        let (mut length, mut chunked, mut location) = (None, false, None);
        for h in resp.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| WireError::Invalid("bad Content-Length".into()))?;
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            } else if (300..400).contains(&status) && name.eq_ignore_ascii_case("location") {
                location = std::str::from_utf8(h.value).ok().map(str::to_string);
            }
        }
        let bodiless = head_request || status < 200 || status == 204 || status == 304;
        let framing = if bodiless {
            Framing::Length(0)
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
        Ok(Some(Head {
            status,
            len,
            framing,
            location,
            close,
        }))
    }

    /// Reads more bytes after `end`, compacting or growing the buffer up to `limit`.
    async fn fill(&mut self, limit: usize) -> Result<(), WireError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < limit {
                self.buf.resize((self.buf.len() * 2).min(limit), 0);
            } else {
                return Err(WireError::Invalid(format!(
                    "response head larger than {limit} bytes"
                )));
            }
        }
        match self.stream.read(&mut self.buf[self.end..]).await {
            Ok(0) => Err(WireError::Closed),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) => Err(WireError::Read(e)),
        }
    }

    /// Drops `n` body bytes.
    async fn skip(&mut self, mut n: usize) -> Result<(), WireError> {
        while n > 0 {
            if self.start == self.end {
                self.fill(BUF).await.map_err(body_error)?;
            }
            let take = n.min(self.end - self.start);
            self.start += take;
            n -= take;
        }
        Ok(())
    }

    async fn skip_chunked(&mut self) -> Result<(), WireError> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.start += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.fill(BUF).await.map_err(body_error)?,
                    Err(_) => return Err(WireError::Body("invalid chunk size".into())),
                }
            };
            if size == 0 {
                break;
            }
            let size = usize::try_from(size)
                .map_err(|_| WireError::Body("chunk larger than memory".into()))?;
            // The chunk and the CRLF after it.
            self.skip(size + 2).await?;
        }
        // Trailer lines up to the empty line.
        loop {
            match self.buf[self.start..self.end]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                Some(0) => {
                    self.start += 2;
                    return Ok(());
                }
                Some(at) => self.start += at + 2,
                None => self.fill(BUF).await.map_err(body_error)?,
            }
        }
    }

    async fn skip_to_close(&mut self) -> Result<(), WireError> {
        loop {
            match self.fill(BUF).await {
                Ok(()) => self.start = self.end,
                Err(WireError::Closed) => return Ok(()),
                Err(e) => return Err(body_error(e)),
            }
        }
    }
}

fn body_error(e: WireError) -> WireError {
    match e {
        WireError::Closed => WireError::Body("connection closed in the body".into()),
        WireError::Read(e) => WireError::Body(e.to_string()),
        e => e,
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The last comma-separated token of a header value (the encoding applied last).
fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|b| *b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

#[cfg(test)]
mod tests;
