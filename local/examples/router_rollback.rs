//! Benchmark: time from the rollback decision (canary weight set to 0) to the last request that
//! reaches the canary backend, on the embedded router under load. Goal: ≤ 100 ms.
//!
//! Run with `bench/router-rollback.sh` (release build).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serin_local::router::{EmbeddedRouter, Routes};

/// A backend that remembers when its last request arrived.
async fn backend(last: Arc<Mutex<Option<Instant>>>) -> SocketAddr {
    let app = Router::new().fallback(get(move || {
        let last = last.clone();
        async move {
            *last.lock().unwrap() = Some(Instant::now());
            "ok"
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let primary_last = Arc::new(Mutex::new(None));
    let canary_last = Arc::new(Mutex::new(None));
    let primary = backend(primary_last).await;
    let canary = backend(canary_last.clone()).await;
    let router = EmbeddedRouter::start(
        "127.0.0.1:0".parse().unwrap(),
        &format!("http://{primary}"),
        &format!("http://{canary}"),
    )
    .await
    .unwrap();
    let url = format!("http://{}/", router.addr());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Closed-loop load: 16 workers as fast as they go.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for _ in 0..16 {
        let (client, url, stop, sent) = (client.clone(), url.clone(), stop.clone(), sent.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(r) = client.get(&url).send().await {
                    let _ = r.bytes().await;
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    let mut delays = Vec::new();
    let started = Instant::now();
    for _ in 0..rounds {
        router.set_routes(Routes::canary_at(50));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let decision = Instant::now();
        router.set_routes(Routes::all_primary());
        // Long enough for any straggler to arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let last = canary_last
            .lock()
            .unwrap()
            .expect("the canary got requests at 50%");
        delays.push(last.saturating_duration_since(decision));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rps =
        sent.load(std::sync::atomic::Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "embedded router, rollback decision → last request at the canary ({rounds} rollbacks under ~{rps:.0} req/s, 16 connections)"
    );
    println!("  median   {:>8.3} ms", ms(delays[delays.len() / 2]));
    println!(
        "  max      {:>8.3} ms      goal ≤ 100 ms: {}",
        ms(*delays.last().unwrap()),
        if ms(*delays.last().unwrap()) <= 100.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
