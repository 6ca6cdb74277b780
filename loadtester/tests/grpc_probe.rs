//! The native `grpc_health_probe` against a real HTTP/2 gRPC server speaking
//! `grpc.health.v1.Health/Check` (hyper's server; the messages are a few protobuf bytes).

use std::convert::Infallible;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serin_loadtester::acceptance::{Native, parse};

type Body = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn grpc_status(code: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("grpc-status", code.parse().unwrap());
    h
}

/// Serving: "" and "web"; not serving: "down"; anything else: NOT_FOUND, as gRPC's own server does.
async fn health(
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, Infallible> {
    let reply = http::Response::builder().header("content-type", "application/grpc");
    if req.uri().path() != "/grpc.health.v1.Health/Check" {
        let frames = vec![Ok(Frame::trailers(grpc_status("12")))];
        return Ok(reply
            .body(StreamBody::new(futures::stream::iter(frames)))
            .unwrap());
    }
    assert_eq!(req.headers()["content-type"], "application/grpc");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let (prefix, msg) = body.split_at(5);
    assert_eq!(
        u32::from_be_bytes(prefix[1..5].try_into().unwrap()) as usize,
        msg.len()
    );
    let service = if msg.is_empty() {
        ""
    } else {
        std::str::from_utf8(&msg[2..]).unwrap()
    };
    let frames = match service {
        "" | "web" => vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 2, 8, 1]))),
            Ok(Frame::trailers(grpc_status("0"))),
        ],
        "down" => vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 2, 8, 2]))),
            Ok(Frame::trailers(grpc_status("0"))),
        ],
        _ => vec![Ok(Frame::trailers(grpc_status("5")))],
    };
    Ok(reply
        .body(StreamBody::new(futures::stream::iter(frames)))
        .unwrap())
}

async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(health)),
            );
        }
    });
    addr
}

async fn probe(args: &str) -> (i32, String) {
    let Native::Probe(p) = parse(&format!("grpc_health_probe {args}")).unwrap() else {
        panic!("not a probe: {args}")
    };
    let out = p.run().await;
    (out.status, out.output)
}

#[tokio::test]
async fn statuses_are_the_probes() {
    let addr = server().await;
    assert_eq!(
        probe(&format!("-connect-timeout=1s -addr={addr}")).await,
        (0, "status: SERVING\n".into())
    );
    assert_eq!(probe(&format!("-addr {addr} -service=web")).await.0, 0);
    let (status, out) = probe(&format!("-addr={addr} -service=down")).await;
    assert_eq!(status, 4, "{out}");
    assert!(out.contains("NOT_SERVING"), "{out}");
    let (status, out) = probe(&format!("-addr={addr} -service=nope")).await;
    assert_eq!(
        (status, out.as_str()),
        (3, "error: health rpc failed: rpc error: code = 5 desc = \n")
    );
}

#[tokio::test]
async fn unreachable_server_fails_to_connect() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (status, out) = probe(&format!("-addr={closed}")).await;
    assert_eq!(status, 2, "{out}");
    assert!(out.contains(&closed), "{out}");
}
