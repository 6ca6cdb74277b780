//! An attack over HTTPS keep-alive (the wire path with rustls) against a real TLS server with a
//! self-signed certificate, as `bench/webhook.sh` drives `serin webhook`. One attack per test
//! binary: goose's killswitch is process-global.

use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serin_loadtester::parse_hey_args;
use serin_loadtester::worker::run_in_this_process;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Default, Debug)]
struct Seen {
    handshakes: u64,
    sni: Vec<Option<String>>,
    requests: u64,
    bodies_ok: u64,
}

/// A TLS server answering every request with 200 "ok", keep-alive; returns its port.
fn tls_server(seen: Arc<Mutex<Seen>>, body: String) -> u16 {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![key.cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen, body) = (acceptor.clone(), seen.clone(), body.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    {
                        let mut seen = seen.lock().unwrap();
                        seen.handshakes += 1;
                        seen.sni
                            .push(tls.get_ref().1.server_name().map(str::to_string));
                    }
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 16384];
                    loop {
                        let Ok(n) = tls.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        // Whole requests in the buffer: head, then Content-Length bytes of body.
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .map_or(0, |v| v.trim().parse().unwrap());
                            if buf.len() < end + 4 + len {
                                break;
                            }
                            let ok = &buf[end + 4..end + 4 + len] == body.as_bytes()
                                && head.contains("content-type: application/json");
                            buf.drain(..end + 4 + len);
                            {
                                let mut seen = seen.lock().unwrap();
                                seen.requests += 1;
                                seen.bodies_ok += u64::from(ok);
                            }
                            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if tls.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
    });
    port
}

#[test]
fn post_over_https_keep_alive_with_a_self_signed_certificate() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    // A ~10 KB JSON body, as the webhook benchmark sends.
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000));
    let port = tls_server(seen.clone(), body.clone());
    let url = format!("https://127.0.0.1:{port}/mutate");
    let args = [
        "-n",
        "400",
        "-c",
        "4",
        "-m",
        "POST",
        "-d",
        &body,
        "-T",
        "application/json",
        "-host",
        "localhost",
        &url,
    ];
    let spec = parse_hey_args(&args).unwrap().spec;
    let report = run_in_this_process(&spec, |_| {}).unwrap();
    let s = report.summary;
    assert_eq!(s.requests, 400);
    assert_eq!(s.failed, 0, "{:?}", s.errors);
    assert_eq!(s.status_codes.get(&200), Some(&400));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests, 400, "every request reached the server");
    assert_eq!(seen.bodies_ok, 400, "with its body and content type");
    assert_eq!(
        seen.handshakes, 4,
        "one TLS session per worker (keep-alive)"
    );
    assert!(
        seen.sni.iter().all(|n| n.as_deref() == Some("localhost")),
        "-host sets the SNI: {:?}",
        seen.sni
    );
}
