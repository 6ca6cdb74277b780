//! Generated load for local runs: a `hey`-style command (`hey -z 30s -q 20 -c 4 [URL]`) run
//! in-process against the router. `-q` is per worker, as in hey.

use std::time::Duration;

use tokio::task::JoinHandle;

/// A parsed load command.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSpec {
    pub concurrency: u32,
    /// Requests per second per worker; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Total run time; `None` runs until stopped.
    pub duration: Option<Duration>,
    /// Total requests; `None` is unlimited.
    pub requests: Option<u64>,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout: Duration,
    /// The target; `None` means the router.
    pub url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("--load {0}")]
pub struct LoadError(String);

impl LoadSpec {
    /// Parses `hey [flags] [URL]` (the leading `hey` is optional).
    pub fn parse(command: &str) -> Result<Self, LoadError> {
        let words = shell_words::split(command)
            .map_err(|e| LoadError(format!("cannot split {command:?}: {e}")))?;
        let mut it = words.into_iter().peekable();
        if it.peek().is_some_and(|w| w == "hey") {
            it.next();
        }
        let mut spec = LoadSpec {
            concurrency: 50,
            rate: None,
            duration: None,
            requests: None,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(20),
            url: None,
        };
        while let Some(w) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .ok_or_else(|| LoadError(format!("{flag} needs a value")))
            };
            let num = |flag: &str, v: String| -> Result<f64, LoadError> {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| LoadError(format!("{flag} must be a number, got {v:?}")))
            };
            match w.as_str() {
                "-c" => spec.concurrency = num("-c", value("-c")?)?.max(1.0) as u32,
                "-q" => spec.rate = Some(num("-q", value("-q")?)?).filter(|q| *q > 0.0),
                "-n" => spec.requests = Some(num("-n", value("-n")?)? as u64),
                "-z" => {
                    let v = value("-z")?;
                    spec.duration =
                        Some(serin_api::duration::parse(&v).map_err(|e| {
                            LoadError(format!("-z {v:?}: {e} (write e.g. 30s or 1m)"))
                        })?)
                }
                "-t" => spec.timeout = Duration::from_secs_f64(num("-t", value("-t")?)?.max(0.001)),
                "-m" => spec.method = value("-m")?.to_ascii_uppercase(),
                "-d" => spec.body = Some(value("-d")?),
                "-H" => {
                    let v = value("-H")?;
                    let (k, val) = v
                        .split_once(':')
                        .ok_or_else(|| LoadError(format!("-H {v:?}: write \"Name: value\"")))?;
                    spec.headers.push((k.trim().into(), val.trim().into()));
                }
                "-T" => spec.headers.push(("content-type".into(), value("-T")?)),
                flag if flag.starts_with('-') => {
                    return Err(LoadError(format!(
                        "unsupported flag {flag}: local load knows -c -q -n -z -t -m -d -H -T"
                    )));
                }
                url => spec.url = Some(url.to_owned()),
            }
        }
        Ok(spec)
    }

    /// Starts the workers against `default_url` (or the command's URL); abort the handle to stop.
    pub fn start(&self, default_url: &str) -> JoinHandle<()> {
        let spec = self.clone();
        let url = spec.url.clone().unwrap_or_else(|| default_url.to_owned());
        tokio::spawn(async move {
            let client = match reqwest::Client::builder()
                .timeout(spec.timeout)
                .no_proxy()
                .pool_max_idle_per_host(spec.concurrency as usize)
                .build()
            {
                Ok(c) => c,
                Err(_) => return,
            };
            let per_worker = spec
                .requests
                .map(|n| n.div_ceil(u64::from(spec.concurrency)));
            let deadline = spec.duration.map(|d| tokio::time::Instant::now() + d);
            // A JoinSet aborts the workers when this task is aborted (dropped).
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..spec.concurrency {
                let (client, url, spec) = (client.clone(), url.clone(), spec.clone());
                workers.spawn(async move {
                    let start = tokio::time::Instant::now();
                    let mut sent = 0u64;
                    loop {
                        if per_worker.is_some_and(|n| sent >= n)
                            || deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
                        {
                            break;
                        }
                        if let Some(q) = spec.rate {
                            // Paced from the start, so a slow answer does not lower the rate.
                            let due = start + Duration::from_secs_f64(sent as f64 / q);
                            tokio::time::sleep_until(due).await;
                        }
                        let method = reqwest::Method::from_bytes(spec.method.as_bytes())
                            .unwrap_or(reqwest::Method::GET);
                        let mut req = client.request(method, &url);
                        for (k, v) in &spec.headers {
                            req = req.header(k, v);
                        }
                        if let Some(b) = &spec.body {
                            req = req.body(b.clone());
                        }
                        if let Ok(resp) = req.send().await {
                            let _ = resp.bytes().await;
                        }
                        sent += 1;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hey_flags() {
        let s = LoadSpec::parse("hey -z 1m -q 10 -c 2 -H 'x-canary: insider' http://x/").unwrap();
        assert_eq!(s.concurrency, 2);
        assert_eq!(s.rate, Some(10.0));
        assert_eq!(s.duration, Some(Duration::from_secs(60)));
        assert_eq!(s.headers, vec![("x-canary".into(), "insider".into())]);
        assert_eq!(s.url.as_deref(), Some("http://x/"));
    }

    #[tokio::test]
    async fn runs_the_requested_number_and_stops_when_aborted() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let done = LoadSpec::parse("hey -n 30 -c 3").unwrap().start(&url);
        done.await.unwrap();
        assert_eq!(hits.load(Ordering::Relaxed), 30);
        let endless = LoadSpec::parse("hey -c 2 -q 200").unwrap().start(&url);
        while hits.load(Ordering::Relaxed) < 60 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        endless.abort();
        let _ = endless.await;
        let after_abort = hits.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // At most the requests in flight at the abort land afterwards.
        assert!(hits.load(Ordering::Relaxed) <= after_abort + 2);
    }

    #[test]
    fn bad_flags_are_named() {
        let e = LoadSpec::parse("hey -q fast").unwrap_err().to_string();
        assert!(e.contains("-q"), "{e}");
        let e = LoadSpec::parse("hey -x 1").unwrap_err().to_string();
        assert!(e.contains("-x"), "{e}");
        let e = LoadSpec::parse("hey -z soon").unwrap_err().to_string();
        assert!(e.contains("-z"), "{e}");
    }
}
