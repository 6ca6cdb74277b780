//! The server's bounds under hostile clients (issue 20): each test makes the attack or fault with
//! small limits and waits for the server's answer to it (a close, a status), never for a time.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use serin_webhook::{Limits, MemoryCanaryIndex};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Small enough that the tests are quick, large enough that a loaded machine still handshakes.
const SHORT: Duration = Duration::from_millis(300);
/// Longer than any test: this bound is never what closes a connection.
const LONG: Duration = Duration::from_secs(3600);
/// Only a guard against a hang: a test that passes never waits this long.
const GUARD: Duration = Duration::from_secs(60);

fn limits() -> Limits {
    Limits {
        max_connections: 64,
        handshake_timeout: LONG,
        header_timeout: LONG,
        body_timeout: LONG,
        idle_timeout: LONG,
        max_body_bytes: 64 * 1024,
        max_buffered_bytes: 1024 * 1024,
        drain_timeout: LONG,
    }
}

async fn start(limits: Limits) -> common::Server {
    common::start_with(Arc::new(MemoryCanaryIndex::new()), limits).await
}

fn addr(server: &common::Server) -> SocketAddr {
    server.url.trim_start_matches("https://").parse().unwrap()
}

/// A TLS connection to `server` offering `alpn` (`h2` or `http/1.1`).
async fn connect(server: &common::Server, alpn: &[u8]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.ca.pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr(server)).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let read = async {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                // A close without TLS close_notify, or a reset: closed all the same.
                Err(_) => return out,
            }
        }
    };
    tokio::time::timeout(GUARD, read)
        .await
        .expect("the server closes the connection")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let poll = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(GUARD, poll)
        .await
        .unwrap_or_else(|_| panic!("waiting for {what}"));
}

fn closed_count(server: &common::Server, reason: &str) -> u64 {
    let text = server.state.metrics.encode();
    let prefix = format!("serin_webhook_connections_closed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = start(Limits {
        idle_timeout: SHORT,
        ..limits()
    })
    .await;
    // HTTP/1.1 and HTTP/2, each after one answered request and without any.
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut quiet = connect(&server, alpn).await;
        read_until_closed(&mut quiet).await;
    }
    let mut used = connect(&server, b"http/1.1").await;
    used.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_until_closed(&mut used).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(closed_count(&server, "idle_timeout"), 3);
    wait_for("the connections to be counted closed", || {
        server.state.metrics.connections() == 0
    })
    .await;
}

#[tokio::test]
async fn slow_headers_and_handshakes_are_cut_off() {
    let server = start(Limits {
        header_timeout: SHORT,
        handshake_timeout: SHORT,
        ..limits()
    })
    .await;
    let mut slow = connect(&server, b"http/1.1").await;
    slow.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    read_until_closed(&mut slow).await;
    assert_eq!(closed_count(&server, "header_timeout"), 1);

    // A client that connects and never says hello.
    let mut mute = TcpStream::connect(addr(&server)).await.unwrap();
    read_until_closed(&mut mute).await;
    assert_eq!(closed_count(&server, "handshake_timeout"), 1);

    // An idle connection is not cut off by the header timeout: only bytes start it.
    let (status, _) = server.post("/mutate", b"{}".to_vec()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn past_the_connection_limit_clients_wait_until_one_closes() {
    let server = start(Limits {
        max_connections: 2,
        ..limits()
    })
    .await;
    let first = connect(&server, b"http/1.1").await;
    let _second = connect(&server, b"http/1.1").await;
    let metrics = &server.state.metrics;
    wait_for("the limit to be reached", || {
        metrics.limit_reached_count() == 1
    })
    .await;

    // The third connection is not accepted: its handshake cannot finish while both are open.
    let third = tokio::spawn({
        let client = server.client.clone();
        let url = format!("{}/healthz", server.url);
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::task::yield_now().await;
    assert_eq!(metrics.connections(), 2);
    assert!(!third.is_finished());

    drop(first);
    let status = tokio::time::timeout(GUARD, third).await.unwrap().unwrap();
    assert_eq!(status.unwrap(), 200);
    assert!(metrics.connections() <= 2);
}

/// Sends `head` over HTTP/1.1 and returns the server's answer up to its close.
async fn raw_exchange(server: &common::Server, head: &[u8], body: &[u8]) -> String {
    let mut conn = connect(server, b"http/1.1").await;
    conn.write_all(head).await.unwrap();
    conn.write_all(body).await.unwrap();
    conn.flush().await.unwrap();
    String::from_utf8_lossy(&read_until_closed(&mut conn).await).into_owned()
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_without_being_read() {
    let server = start(Limits {
        body_timeout: SHORT,
        ..limits()
    })
    .await;
    // 100 MB announced, none of it sent: the answer cannot have waited for the body.
    let answer = raw_exchange(
        &server,
        b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n",
        b"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("64 KiB"), "{answer}");

    // Chunked, so without a declared size: refused once the limit is passed.
    let chunk = vec![b' '; 16 * 1024];
    let mut body = Vec::new();
    for _ in 0..5 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    let answer = raw_exchange(
        &server,
        b"POST /mutate HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        &body,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A body that stops coming: 408 once the body timeout passes.
    let answer = raw_exchange(
        &server,
        b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n",
        b"{\"apiVersion\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-timeout"), "{answer}");
}

#[tokio::test]
async fn many_partial_bodies_are_bounded_by_the_buffer_budget() {
    let server = Arc::new(
        start(Limits {
            max_buffered_bytes: 128 * 1024,
            ..limits()
        })
        .await,
    );
    // Three clients each send 60 KiB of a 64 KiB body and stop: two fit the budget of 128 KiB
    // and wait for the rest of their bodies; the one read last is refused.
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (server, answers) = (server.clone(), answers.clone());
        clients.push(tokio::spawn(async move {
            let head = b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 65536\r\n\r\n";
            let _ = answers.send(raw_exchange(&server, head, &[b' '; 60 * 1024]).await);
        }));
    }
    let first = tokio::time::timeout(GUARD, answered.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.starts_with("HTTP/1.1 503"), "{first}");
    assert!(first.contains("--max-buffered-bytes"), "{first}");
    for client in clients {
        client.abort();
    }
    // Once those connections are gone, the budget is free again.
    let (status, _) = server.post("/mutate", b"{}".to_vec()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_a_json_body() {
    let server = start(limits()).await;
    let (status, body) = server.post("/nowhere", Vec::new()).await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("POST /mutate"),
        "{body}"
    );
    let response = server
        .client
        .get(format!("{}/mutate", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 405);
}

#[tokio::test]
async fn reviews_the_api_server_never_sends_are_denied() {
    let server = start(limits()).await;
    let gvk = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let cases = [
        (
            "array",
            json!({"operation": "UPDATE", "kind": gvk, "object": [1, 2]}),
            "is an array",
        ),
        (
            "string",
            json!({"operation": "UPDATE", "kind": gvk, "object": "web"}),
            "is a string",
        ),
        (
            "number",
            json!({"operation": "CREATE", "kind": gvk, "object": 7}),
            "is a number",
        ),
        (
            "no kind",
            json!({"operation": "CREATE", "object": {}}),
            "no request.kind",
        ),
        (
            "operation",
            json!({"operation": "PATCH", "kind": gvk, "object": {}}),
            "PATCH",
        ),
    ];
    for path in ["/mutate", "/validate"] {
        for (name, mut request, needle) in cases.clone() {
            request["uid"] = json!(format!("uid-{name}"));
            let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                "request": request});
            let response = server.review(path, &review).await;
            assert_eq!(response["allowed"], false, "{path} {name}: {response}");
            let message = response["status"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{path} {name}: {message}");
        }
    }
}

#[tokio::test]
async fn a_denial_lists_a_bounded_number_of_problems() {
    let server = start(Limits {
        max_body_bytes: serin_webhook::MAX_BODY_BYTES,
        max_buffered_bytes: serin_webhook::MAX_BODY_BYTES,
        ..limits()
    })
    .await;
    let metrics: Vec<_> = (0..40_000)
        .map(|i| json!({"name": format!("m{i}"), "interval": "soon"}))
        .collect();
    let canary = json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                              "metrics": metrics}}});
    let review = common::review("flagger.app", "Canary", "CREATE", Some(canary), None);
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() < serin_webhook::MAX_BODY_BYTES);
    let (status, answer) = server.post("/validate", body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.len() < 16 * 1024, "{} bytes", message.len());
    assert!(message.contains("more errors"), "{message}");
    assert!(answer.to_string().len() < 32 * 1024);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_the_request_in_progress_finish() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let server = start(limits()).await;
    // A second server on the same certificate, with a shutdown the test controls.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = serin_webhook::AppState::with_limits(Arc::new(MemoryCanaryIndex::new()), limits());
    let serving = tokio::spawn(serin_webhook::serve_tls(
        listener,
        server.cert.server_config().unwrap(),
        state,
        async move {
            let _ = stopped.await;
        },
    ));
    let review = serde_json::to_vec(&common::review(
        "apps",
        "Deployment",
        "UPDATE",
        Some(json!({})),
        None,
    ))
    .unwrap();
    let (head, tail) = review.split_at(review.len() / 2);

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.ca.pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(local).await.unwrap();
    let mut conn = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    // `Expect: 100-continue`: the server says when it has the request and reads its body.
    conn.write_all(
        format!(
            "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            review.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    conn.flush().await.unwrap();
    let mut continued = [0u8; 25];
    conn.read_exact(&mut continued).await.unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(head).await.unwrap();
    conn.flush().await.unwrap();

    stop.send(()).unwrap();
    // The listener is closed: new connections are refused.
    wait_for_refusal(local).await;
    conn.write_all(tail).await.unwrap();
    conn.flush().await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(&mut conn).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"allowed\":true"), "{answer}");
    tokio::time::timeout(GUARD, serving)
        .await
        .expect("serve_tls returns once drained")
        .unwrap()
        .unwrap();
}

async fn wait_for_refusal(addr: SocketAddr) {
    let refused = async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(GUARD, refused)
        .await
        .expect("the listener closes");
}
