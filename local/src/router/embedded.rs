//! The embedded router: an HTTP reverse proxy that splits requests between the primary and the
//! canary by weights set at runtime, routes A/B matches to the canary, mirrors on request, and
//! accounts every request per backend (the builtin metrics come from that accounting).
//!
//! The split is smooth weighted round-robin (nginx's algorithm): deterministic, so over any
//! run of `primary + canary` consecutive requests each backend gets exactly its weight, and a
//! weight change applies to the very next request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::matching::MatchRules;
use super::stats::{BackendStats, Totals, Window};
use super::{Backend, RouterError, Routes};

type Body = BoxBody<Bytes, hyper::Error>;

struct Split {
    routes: Routes,
    /// Smooth weighted round-robin state ("current weights").
    current: [i64; 2],
    primary: Uri,
    canary: Uri,
    matches: Option<MatchRules>,
}

impl Split {
    fn pick(&mut self) -> Backend {
        let weights = [
            i64::from(self.routes.primary),
            i64::from(self.routes.canary),
        ];
        let total = weights[0] + weights[1];
        if total == 0 {
            return Backend::Primary;
        }
        self.current[0] += weights[0];
        self.current[1] += weights[1];
        let chosen = usize::from(self.current[1] > self.current[0]);
        self.current[chosen] -= total;
        if chosen == 1 {
            Backend::Canary
        } else {
            Backend::Primary
        }
    }
}

struct Shared {
    split: Mutex<Split>,
    stats: Mutex<[BackendStats; 2]>,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the counters inconsistent enough to matter.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running embedded router; dropping it does not stop it, `shutdown` does.
#[derive(Clone)]
pub struct EmbeddedRouter {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Arc<tokio::task::JoinHandle<()>>,
}

fn base_uri(url: &str, which: &str) -> Result<Uri, RouterError> {
    let uri: Uri = url.parse().map_err(|e| RouterError::Backend {
        which: which.to_owned(),
        url: url.to_owned(),
        reason: format!("{e}"),
    })?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(RouterError::Backend {
            which: which.to_owned(),
            url: url.to_owned(),
            reason: "the embedded router needs an http://host:port URL".into(),
        });
    }
    Ok(uri)
}

impl EmbeddedRouter {
    /// Starts the router on `listen`, all traffic to the primary.
    pub async fn start(
        listen: SocketAddr,
        primary: &str,
        canary: &str,
    ) -> Result<Self, RouterError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| RouterError::Listen(listen.to_string(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| RouterError::Listen(listen.to_string(), e))?;
        let origin = Instant::now();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let shared = Arc::new(Shared {
            split: Mutex::new(Split {
                routes: Routes::all_primary(),
                current: [0, 0],
                primary: base_uri(primary, "primary")?,
                canary: base_uri(canary, "canary")?,
                matches: None,
            }),
            stats: Mutex::new([BackendStats::new(origin), BackendStats::new(origin)]),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            shared,
            addr,
            task: Arc::new(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the weights; the next request already follows them.
    pub fn set_routes(&self, routes: Routes) {
        let mut split = lock(&self.shared.split);
        if split.routes != routes {
            split.routes = routes;
            split.current = [0, 0];
        }
    }

    pub fn routes(&self) -> Routes {
        lock(&self.shared.split).routes
    }

    /// A/B mode: requests that match go to the canary while its weight is above 0, all others
    /// to the primary. `None` returns to weighted mode.
    pub fn set_matches(&self, matches: Option<MatchRules>) {
        lock(&self.shared.split).matches = matches;
    }

    /// Points the canary at a new backend and starts its accounting afresh.
    pub fn set_canary_backend(&self, url: &str) -> Result<(), RouterError> {
        let uri = base_uri(url, "canary")?;
        lock(&self.shared.split).canary = uri;
        let mut stats = lock(&self.shared.stats);
        stats[1] = BackendStats::new(Instant::now());
        Ok(())
    }

    pub fn set_primary_backend(&self, url: &str) -> Result<(), RouterError> {
        let uri = base_uri(url, "primary")?;
        lock(&self.shared.split).primary = uri;
        Ok(())
    }

    pub fn totals(&self, backend: Backend) -> Totals {
        lock(&self.shared.stats)[backend.index()].totals()
    }

    /// What `backend` answered in the last `window`.
    pub fn window(&self, backend: Backend, window: Duration) -> Window {
        lock(&self.shared.stats)[backend.index()].window(Instant::now(), window)
    }

    /// When the router last sent a request (or a mirrored copy) to `backend`.
    pub fn last_request(&self, backend: Backend) -> Option<Instant> {
        lock(&self.shared.stats)[backend.index()].last_request()
    }

    pub fn shutdown(&self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, typically: give in-flight requests time to finish.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(proxy(shared, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Headers that belong to one hop and must not be forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
    headers.remove(header::UPGRADE);
}

fn text(status: StatusCode, msg: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(msg)).map_err(|n| match n {}).boxed());
    *resp.status_mut() = status;
    resp
}

fn target(base: &Uri, req_uri: &Uri) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query = req_uri
        .path_and_query()
        .cloned()
        .or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
    Uri::from_parts(parts).unwrap_or_else(|_| base.clone())
}

async fn proxy(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    // Buffered so that a mirrored copy can be sent; local mode serves small API payloads.
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("reading request body: {e}\n"),
            );
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    let (backend, base, mirror_to) = {
        let mut split = lock(&shared.split);
        let backend = match &split.matches {
            Some(rules) if rules.matches(&parts.headers, &parts.uri) && split.routes.canary > 0 => {
                Backend::Canary
            }
            Some(_) => Backend::Primary,
            None => split.pick(),
        };
        let base = match backend {
            Backend::Primary => split.primary.clone(),
            Backend::Canary => split.canary.clone(),
        };
        let mirror_to =
            (split.routes.mirror && backend == Backend::Primary).then(|| split.canary.clone());
        (backend, base, mirror_to)
    };
    if let Some(canary) = mirror_to {
        let mut copy = Request::new(Full::new(body.clone()));
        *copy.method_mut() = parts.method.clone();
        *copy.uri_mut() = target(&canary, &parts.uri);
        *copy.headers_mut() = parts.headers.clone();
        tokio::spawn(forward(shared.clone(), Backend::Canary, copy, true));
    }
    let mut out = Request::from_parts(parts, Full::new(body));
    *out.uri_mut() = target(&base, out.uri());
    forward(shared, backend, out, false).await
}

/// Sends one request to `backend` and accounts for it; the latency is time to response headers.
async fn forward(
    shared: Arc<Shared>,
    backend: Backend,
    req: Request<Full<Bytes>>,
    mirrored: bool,
) -> Response<Body> {
    let sent = Instant::now();
    lock(&shared.stats)[backend.index()].dispatched(sent);
    let result = shared.client.request(req).await;
    let done = Instant::now();
    let (response, error) = match result {
        Ok(resp) => {
            let error = resp.status().is_server_error();
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            (Response::from_parts(parts, body.boxed()), error)
        }
        Err(e) => (
            text(
                StatusCode::BAD_GATEWAY,
                format!(
                    "serin router: {} backend unreachable: {e}\n",
                    backend.name()
                ),
            ),
            true,
        ),
    };
    lock(&shared.stats)[backend.index()].record(done, done - sent, error, mirrored);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: u32, c: u32) -> Split {
        Split {
            routes: Routes {
                primary: p,
                canary: c,
                mirror: false,
            },
            current: [0, 0],
            primary: Uri::from_static("http://127.0.0.1:1"),
            canary: Uri::from_static("http://127.0.0.1:2"),
            matches: None,
        }
    }

    #[test]
    fn smooth_round_robin_gives_exact_shares_in_every_cycle() {
        for canary in [0u32, 1, 5, 10, 33, 50, 90, 100] {
            let mut s = split(100 - canary, canary);
            for _cycle in 0..3 {
                let at_canary = (0..100).filter(|_| s.pick() == Backend::Canary).count();
                assert_eq!(at_canary as u32, canary);
            }
        }
    }

    #[test]
    fn smooth_round_robin_spreads_the_canary_share() {
        // 10% must not come as a burst of ten: no window of 20 requests holds more than 3.
        let mut s = split(90, 10);
        let picks: Vec<bool> = (0..200).map(|_| s.pick() == Backend::Canary).collect();
        for w in picks.windows(20) {
            assert!(w.iter().filter(|c| **c).count() <= 3);
        }
    }
}
