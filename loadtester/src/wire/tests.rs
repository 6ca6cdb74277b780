//! The wire client against a real TCP server that answers each request with scripted bytes.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Conn, Reply, WireRequest};
use crate::spec::parse_hey_args;

/// What the server received: one entry per request (head and body), per connection.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

/// Serves `script` in order across connections; `split` writes responses one byte at a time.
async fn server(script: Vec<&'static [u8]>, split: bool) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut script = script.into_iter();
        'conns: while let Ok((mut s, _)) = listener.accept().await {
            log.lock().unwrap().push(Vec::new());
            loop {
                let Some(request) = read_request(&mut s).await else {
                    continue 'conns;
                };
                log.lock().unwrap().last_mut().unwrap().push(request);
                let Some(reply) = script.next() else {
                    return;
                };
                if reply.is_empty() {
                    // An empty entry closes the connection without answering.
                    continue 'conns;
                }
                if split {
                    for b in reply {
                        s.write_all(&[*b]).await.unwrap();
                        s.flush().await.unwrap();
                        tokio::task::yield_now().await;
                    }
                } else {
                    s.write_all(reply).await.unwrap();
                }
                if reply.starts_with(b"HTTP/1.0") || contains(reply, b"Connection: close") {
                    continue 'conns;
                }
            }
        }
    });
    (addr, seen)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
            let len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            if buf.len() >= n + len {
                return Some(String::from_utf8(buf).unwrap());
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn request(args: &str, addr: &str) -> WireRequest {
    let mut argv = shell_words::split(args).unwrap();
    argv.push(format!("http://{addr}/p?q=1"));
    let spec = parse_hey_args(&argv).unwrap().spec;
    WireRequest::new(&spec, &spec.requests[0]).expect("a wire request")
}

async fn conn(addr: &str) -> Conn<TcpStream> {
    Conn::new(TcpStream::connect(addr).await.unwrap())
}

fn ok(status: u16, reusable: bool) -> Reply {
    Reply {
        status,
        location: None,
        reusable,
    }
}

#[test]
fn request_bytes_follow_the_flags() {
    let r = request(
        "-m POST -d hello -T application/json -host web.example",
        "127.0.0.1:9",
    );
    let text = String::from_utf8(r.bytes().to_vec()).unwrap();
    assert!(text.starts_with("POST /p?q=1 HTTP/1.1\r\n"), "{text}");
    assert!(text.contains("\r\nHost: web.example\r\n"), "{text}");
    assert!(
        !text.contains("127.0.0.1:9"),
        "-host replaces the authority: {text}"
    );
    assert!(
        text.contains("\r\nContent-Type: application/json\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nAccept-Encoding: gzip\r\n"), "{text}");
    assert!(
        text.ends_with("\r\nContent-Length: 5\r\n\r\nhello"),
        "{text}"
    );

    let r = request("-disable-compression", "127.0.0.1:9");
    let text = String::from_utf8(r.bytes().to_vec()).unwrap();
    assert!(text.contains("\r\nHost: 127.0.0.1:9\r\n"), "{text}");
    assert!(!text.contains("Accept-Encoding"), "{text}");
    assert!(
        !text.contains("Content-Length"),
        "a GET without body: {text}"
    );
}

#[test]
fn what_the_wire_cannot_carry_goes_elsewhere() {
    let spec = parse_hey_args(&["-disable-keepalive", "http://x/"])
        .unwrap()
        .spec;
    assert!(WireRequest::new(&spec, &spec.requests[0]).is_none());
    let spec = parse_hey_args(&["-h2", "http://x/"]).unwrap().spec;
    assert!(WireRequest::new(&spec, &spec.requests[0]).is_none());
    let spec = parse_hey_args(&["-H", "X-Bad: a\u{7f}b", "http://x/"])
        .unwrap()
        .spec;
    assert!(WireRequest::new(&spec, &spec.requests[0]).is_none());
}

#[tokio::test]
async fn keep_alive_with_length_and_chunked_bodies() {
    let (addr, seen) = server(
        vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n2;x=y\r\n!!\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ],
        false,
    )
    .await;
    let r = request("", &addr);
    let mut c = conn(&addr).await;
    assert_eq!(c.exchange(&r).await.unwrap(), ok(200, true));
    assert_eq!(c.exchange(&r).await.unwrap(), ok(503, true));
    assert_eq!(c.exchange(&r).await.unwrap(), ok(204, true));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one connection for all three");
    assert_eq!(seen[0].len(), 3);
}

#[tokio::test]
async fn responses_arriving_a_byte_at_a_time() {
    let (addr, _) = server(
        vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ],
        true,
    )
    .await;
    let r = request("", &addr);
    let mut c = conn(&addr).await;
    assert_eq!(c.exchange(&r).await.unwrap(), ok(200, true));
    assert_eq!(c.exchange(&r).await.unwrap(), ok(200, true));
}

#[tokio::test]
async fn closing_responses_are_not_reused() {
    let (addr, _) = server(
        vec![
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.0 200 OK\r\n\r\nbody until the close",
        ],
        false,
    )
    .await;
    let r = request("", &addr);
    assert_eq!(
        conn(&addr).await.exchange(&r).await.unwrap(),
        ok(200, false)
    );
    assert_eq!(
        conn(&addr).await.exchange(&r).await.unwrap(),
        ok(200, false)
    );
}

#[tokio::test]
async fn head_responses_have_no_body_and_redirects_carry_their_location() {
    let (addr, _) = server(
        vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
        ],
        false,
    )
    .await;
    let mut c = conn(&addr).await;
    assert_eq!(
        c.exchange(&request("-m HEAD", &addr)).await.unwrap(),
        ok(200, true)
    );
    let reply = c.exchange(&request("", &addr)).await.unwrap();
    assert_eq!(reply.status, 302);
    assert_eq!(reply.location.as_deref(), Some("/next"));
}

#[tokio::test]
async fn broken_responses_are_errors_that_say_why() {
    let (addr, _) = server(
        vec![
            b"",
            b"NOT HTTP AT ALL\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        ],
        false,
    )
    .await;
    let r = request("", &addr);
    let err = conn(&addr)
        .await
        .exchange(&r)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "request error: connection closed before the response was complete"
    );
    let err = conn(&addr)
        .await
        .exchange(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("request error: invalid response"), "{err}");
    let err = conn(&addr)
        .await
        .exchange(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad Content-Length"), "{err}");
}
