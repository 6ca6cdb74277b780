//! The request path of the closed model for plain-HTTP keep-alive targets: each goose user owns
//! one hyper HTTP/1.1 connection and sends pre-built requests on it, as wrk does. goose's own
//! request path (reqwest pool lookup, URL parsing and per-request metric records) costs more CPU
//! than the target on a small machine, which capped the generator below hey; goose still runs the
//! users (launch, weights, pacing hooks, run time, killswitch). HTTPS, `-h2` and
//! `-disable-keepalive` go through reqwest.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HOST, HeaderName, HeaderValue, LOCATION};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::rt::TokioIo;

use crate::request::{Prepared, send};
use crate::spec::{AttackSpec, RequestSpec};
use crate::summary::Outcome;

pub(crate) type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A request pre-built once for the whole attack.
pub(crate) struct FastRequest {
    connect_to: (String, u16),
    method: Method,
    path: Uri,
    headers: HeaderMap,
    body: Bytes,
    base: url::Url,
}

impl FastRequest {
    /// `None` when this request needs reqwest (TLS, HTTP/2, no keep-alive, odd headers).
    pub(crate) fn new(spec: &AttackSpec, r: &RequestSpec) -> Option<Self> {
        if spec.http2 || spec.disable_keepalive {
            return None;
        }
        let url = url::Url::parse(&r.url).ok()?;
        if url.scheme() != "http" {
            return None;
        }
        let host = url.host_str()?.to_string();
        let port = url.port_or_known_default()?;
        let path: Uri = url[url::Position::BeforePath..url::Position::AfterQuery]
            .parse()
            .ok()?;
        let mut headers = HeaderMap::new();
        let authority = url[url::Position::BeforeHost..url::Position::AfterPort].to_string();
        headers.insert(HOST, HeaderValue::from_str(&authority).ok()?);
        headers.insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(concat!("serin-loadtest/", env!("CARGO_PKG_VERSION"))),
        );
        if !spec.disable_compression {
            headers.insert(
                hyper::header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        for (k, v) in &r.headers {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            );
        }
        Some(FastRequest {
            connect_to: (host, port),
            method: Method::from_bytes(r.method.as_bytes()).ok()?,
            path,
            headers,
            body: Bytes::from(r.body.clone().unwrap_or_default()),
            base: url,
        })
    }

    fn build(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

async fn connect(to: &(String, u16)) -> Result<Conn, String> {
    let stream = tokio::net::TcpStream::connect((to.0.as_str(), to.1))
        .await
        .map_err(|e| format!("connection error: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("connection error: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

async fn exchange(
    conn: &mut Option<Conn>,
    r: &FastRequest,
) -> Result<(u16, Option<String>), String> {
    let mut c = match conn.take() {
        Some(c) if !c.is_closed() => c,
        _ => connect(&r.connect_to).await?,
    };
    c.ready()
        .await
        .map_err(|e| format!("connection error: {e}"))?;
    let resp = c
        .send_request(r.build())
        .await
        .map_err(|e| format!("request error: {e}"))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let keep = !resp
        .headers()
        .get(hyper::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    resp.into_body()
        .collect()
        .await
        .map_err(|e| format!("error reading the response body: {e}"))?;
    if keep {
        *conn = Some(c);
    }
    Ok((status, location))
}

/// Sends `r` on the user's connection (opened on demand, dropped after an error), following a
/// redirect with reqwest unless `-disable-redirects`, and classifies the result like reqwest's path.
pub(crate) async fn send_fast(
    conn: &mut Option<Conn>,
    r: &FastRequest,
    prepared: &Prepared,
    client: &reqwest::Client,
    spec: &AttackSpec,
) -> Outcome {
    let attempt = exchange(conn, r);
    let result = match spec.timeout {
        Some(t) => match tokio::time::timeout(t, attempt).await {
            Ok(r) => r,
            Err(_) => {
                *conn = None;
                return Outcome::Error(format!("timeout: no response within {}s", t.as_secs()));
            }
        },
        None => attempt.await,
    };
    match result {
        Ok((status, Some(location))) if (300..400).contains(&status) && !spec.disable_redirects => {
            let Ok(next) = r.base.join(&location) else {
                return prepared.outcome(status);
            };
            let rb = client.request(reqwest::Method::GET, next.as_str());
            send(rb, prepared, std::time::Instant::now()).await.1
        }
        Ok((status, _)) => prepared.outcome(status),
        Err(e) => {
            *conn = None;
            Outcome::Error(e)
        }
    }
}
