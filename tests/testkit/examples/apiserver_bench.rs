//! What the in-memory API server costs a test: create, get, list and watch rates, and its memory with
//! 1,000 Canaries and 1,000 Deployments (the controller's benchmark scale). Run by bench/apiserver.sh.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use serin_api::canary::Canary;
use serin_testkit::ApiServer;
use std::time::{Duration, Instant};

const N: usize = 1000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rss_start = rss_mib();
    let server = ApiServer::default();
    let client = server.client();
    for crd in serin_api::crd::crds() {
        server.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "prod");
    let canaries: Api<Canary> = Api::namespaced(client.clone(), "prod");

    let t = Instant::now();
    for i in 0..N {
        let name = format!("app-{i:04}");
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "ghcr.io/example/app:1.0.0", "ports": [{"containerPort": 8080}]}]}}}
        }))
        .unwrap();
        deployments
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
        let c: Canary = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}, "service": {"port": 80},
                     "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}}
        }))
        .unwrap();
        canaries.create(&PostParams::default(), &c).await.unwrap();
    }
    let creates = 2.0 * N as f64 / t.elapsed().as_secs_f64();

    let mut lat = Vec::with_capacity(10_000);
    let t = Instant::now();
    for i in 0..10_000 {
        let s = Instant::now();
        canaries.get(&format!("app-{:04}", i % N)).await.unwrap();
        lat.push(s.elapsed());
    }
    let gets = 10_000.0 / t.elapsed().as_secs_f64();
    lat.sort();

    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            canaries
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            N
        );
    }
    let list_ms = t.elapsed().as_secs_f64() * 1000.0 / 20.0;

    // 10 watchers (as 10 controllers' reflectors would be), then one status patch per Canary.
    let mut watchers = Vec::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(16);
    for _ in 0..10 {
        let (api, done) = (canaries.clone(), done_tx.clone());
        watchers.push(tokio::spawn(async move {
            let mut s = std::pin::pin!(watcher(api, watcher::Config::default()).applied_objects());
            while let Some(Ok(c)) = s.next().await {
                if c.metadata.name.as_deref() == Some("app-0999")
                    && c.status.as_ref().map(|s| s.canary_weight) == Some(10)
                {
                    let _ = done.send(()).await;
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    for i in 0..N {
        canaries
            .patch_status(
                &format!("app-{i:04}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Progressing", "canaryWeight": 10}})),
            )
            .await
            .unwrap();
    }
    for _ in 0..10 {
        done_rx.recv().await.unwrap();
    }
    let fanout = (N * 10) as f64 / t.elapsed().as_secs_f64();
    let rss_end = rss_mib();

    println!(
        "in-memory API server, in-process kube client, {N} Canaries + {N} Deployments (debug/release as built)"
    );
    println!("{:<44} {:>14}   for comparison", "measure", "figure");
    println!(
        "{:<44} {:>10.0}/s",
        "creates (Deployment + Canary)", creates
    );
    println!(
        "{:<44} {:>10.0}/s   p50 {:?}, p99 {:?}",
        "GET canary",
        gets,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    println!(
        "{:<44} {:>11.1}ms   controllers list once, then watch",
        format!("LIST all {N} canaries"),
        list_ms
    );
    println!(
        "{:<44} {:>10.0}/s   1,000 status patches seen by 10 watchers",
        "watch events delivered", fanout
    );
    println!(
        "{:<44} {:>10.1}MiB  controller goal: <= 200 MiB with 1,000 Canaries (this is the test server's share)",
        "RSS growth (store, history, request log)",
        rss_end - rss_start
    );
    println!("{:<44} {:>14}", "requests served", server.request_count());
    for w in watchers {
        w.abort();
    }
}
