//! `--rate`: the open model. Request i is due at start + i/R whatever happened to the others,
//! and its latency counts from that due time (as wrk2 does), so a slow target shows up as latency
//! instead of as fewer requests. goose users are a closed loop (a user waits for its response
//! before the next request, and `ThrottleRequests` is only a cap), which cannot keep a constant
//! arrival rate, so this mode schedules requests on tokio directly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::request::{Prepared, send};
use crate::spec::{AttackSpec, Stop};
use crate::summary::Recorder;

/// Requests in flight are capped so a dead target cannot exhaust memory or sockets.
pub const MAX_IN_FLIGHT: usize = 10_000;

pub(crate) struct Open {
    pub(crate) recorder: Mutex<Recorder>,
    pub(crate) start: Instant,
}

pub(crate) async fn run(
    spec: &AttackSpec,
    client: reqwest::Client,
    prepared: Vec<Prepared>,
    state: Arc<Open>,
) {
    let rate = spec.rate.unwrap_or(1.0);
    let keepalive = !spec.disable_keepalive;
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Weighted round robin over the requests (a hey command has one).
    let order: Vec<usize> = prepared
        .iter()
        .enumerate()
        .flat_map(|(i, p)| std::iter::repeat_n(i, p.spec.weight.max(1) as usize))
        .collect();
    let prepared = Arc::new(prepared);
    let start = state.start;
    let mut i: u64 = 0;
    loop {
        // i / rate is exact when the product is a whole second, so `--rate 3 -z 1s` sends 3 where
        // a rounded period times i (999 999 999 ns) let a 4th one in; the parser bounds the rate.
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        match spec.stop {
            Stop::Requests(n) if i >= n => break,
            Stop::Duration(z) if due >= start + z => break,
            _ => {}
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let which = order[(i % order.len() as u64) as usize];
        let (client, prepared, state) = (client.clone(), prepared.clone(), state.clone());
        tokio::spawn(async move {
            let p = &prepared[which];
            let (latency, outcome) = send(p.builder(&client, keepalive), p, due).await;
            state
                .recorder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(latency, outcome);
            drop(permit);
        });
        i += 1;
    }
    // Wait for the requests still in flight.
    let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
}
