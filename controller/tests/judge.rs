//! The statistical judge in the controller, end to end: a judged `request-success-rate`
//! (builtin, Gateway API series) measured through a real Prometheus that scrapes two scripted
//! exporters — the primary's and the canary's pods, with request counters growing at set rates.
//! A healthy canary is promoted, with the judge's evidence surviving a controller restart
//! (`status.judge` round trip); a canary with twice the primary's error rate is rolled back, and
//! the status says what the judge saw.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin_api::Canary;
use serin_controller::Config;
use serin_testkit::prometheus::{Prometheus, Target};
use support::*;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(90);

/// Requests per second, failed share and share slower than 250 ms of one side; the counters
/// advance at each scrape.
#[derive(Default)]
struct Traffic {
    rate: f64,
    failed: f64,
    slow: f64,
    ok_total: f64,
    failed_total: f64,
    /// Cumulative latency buckets: ≤ 0.1 s, ≤ 0.25 s, ≤ 0.5 s, all.
    buckets: [f64; 4],
    last: Option<Instant>,
}

const LE: [&str; 4] = ["0.1", "0.25", "0.5", "+Inf"];

type Side = Arc<Mutex<Traffic>>;

async fn metrics(State(side): State<Side>) -> String {
    let mut t = side.lock().unwrap();
    let now = Instant::now();
    if let Some(last) = t.last {
        let n = t.rate * now.duration_since(last).as_secs_f64();
        t.failed_total += n * t.failed;
        t.ok_total += n * (1.0 - t.failed);
        let shares = [0.5, 1.0 - t.slow, 1.0 - t.slow / 2.0, 1.0];
        for (b, share) in t.buckets.iter_mut().zip(shares) {
            *b += n * share;
        }
    }
    t.last = Some(now);
    let mut out = format!(
        "# TYPE http_request_duration_seconds_count counter\n\
         http_request_duration_seconds_count{{status=\"200\"}} {}\n\
         http_request_duration_seconds_count{{status=\"500\"}} {}\n\
         # TYPE http_request_duration_seconds_bucket counter\n",
        t.ok_total, t.failed_total
    );
    for (le, b) in LE.iter().zip(t.buckets) {
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {b}\n"
        ));
    }
    out
}

async fn exporter(side: Side) -> u16 {
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .with_state(side);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// Prometheus scraping both exporters every 500 ms, labelled as the pods of `web` (primary)
/// and `web-canary` — what the builtin Gateway API count queries select on.
async fn prometheus(dir: &Path, primary: u16, canary: u16) -> Prometheus {
    let primary = Target {
        address: format!("127.0.0.1:{primary}"),
        labels: &PRIMARY_POD,
    };
    let canary = Target {
        address: format!("127.0.0.1:{canary}"),
        labels: &CANARY_POD,
    };
    Prometheus::start(dir, "500ms", &[primary, canary]).await
}

const PRIMARY_POD: [(&str, &str); 2] = [
    ("kubernetes_namespace", NS),
    ("kubernetes_pod_name", "web-6d8f7c9b5-a1b2c"),
];
const CANARY_POD: [(&str, &str); 2] = [
    ("kubernetes_namespace", NS),
    ("kubernetes_pod_name", "web-canary-7f9c8d6b4-z9y8x"),
];

/// Looks the judge of `request-success-rate` has taken, from `status.judge`.
fn looks(canary: &Canary) -> Option<(String, u64)> {
    let record = canary.status.as_ref()?.judge.as_ref()?;
    let state = record.states.get("request-success-rate")?;
    Some((record.run.clone(), state.0.get("intervals")?.as_u64()?))
}

/// Everything a test drives: the two sides' traffic, Prometheus, the API server with a
/// controller, and an initialized Canary `web` with one judged metric.
struct World {
    _primary: Side,
    canary: Side,
    _prom: Prometheus,
    _dir: tempfile::TempDir,
    config: Config,
    server: serin_testkit::apiserver::ApiServer,
    client: kube::Client,
    controller: tokio::task::JoinHandle<()>,
    canaries: Api<Canary>,
    deployments: Api<Deployment>,
}

async fn world(metric: serde_json::Value, slow: f64) -> World {
    let primary: Side = Arc::new(Mutex::new(Traffic {
        rate: 4000.0,
        failed: 0.01,
        slow,
        ..Default::default()
    }));
    let canary_side: Side = Arc::new(Mutex::new(Traffic {
        rate: 1000.0,
        failed: 0.01,
        slow,
        ..Default::default()
    }));
    let primary_port = exporter(primary.clone()).await;
    let canary_port = exporter(canary_side.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let prom_proc = prometheus(dir.path(), primary_port, canary_port).await;
    let prom = prom_proc.url.clone();
    // Ready, and both targets scraped twice (increase() needs two samples).
    wait_for(Duration::from_secs(60), "prometheus with both series", || {
        let url = format!(
            "{prom}/api/v1/query?query=count(count_over_time(http_request_duration_seconds_count[10s])>=2)"
        );
        async move {
            let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            let n = body["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<u32>()
                .ok()?;
            (n == 4).then_some(())
        }
    })
    .await;
    let config = Config {
        mesh_provider: "gatewayapi:v1".into(),
        metrics_server: prom.clone(),
        ..Config::default()
    };
    let (server, client, controller) = start(NS, config.clone()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
            "analysis": {"interval": "2s", "threshold": 1, "maxWeight": 60, "stepWeight": 20,
                         "metrics": [metric]}
        }
    }))
    .unwrap();
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    wait_for(WAIT, "Initialized", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Initialized")).then_some(())
    })
    .await;
    World {
        _primary: primary,
        canary: canary_side,
        _prom: prom_proc,
        _dir: dir,
        config,
        server,
        client,
        controller,
        canaries,
        deployments,
    }
}

impl World {
    async fn set_image(&self, image: &str) {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}}}});
        self.deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    async fn wait_phase(&self, phase: &str) {
        wait_for(WAIT, phase, || async {
            (canary_phase(&self.canaries, "web").await.as_deref() == Some(phase)).then_some(())
        })
        .await;
    }

    /// The note of the first event starting with `prefix`.
    fn event(&self, prefix: &str) -> String {
        self.server
            .objects("events.k8s.io/v1", "Event")
            .iter()
            .filter_map(|e| e["note"].as_str().map(String::from))
            .find(|n| n.starts_with(prefix))
            .unwrap_or_else(|| panic!("no event starting with {prefix:?}"))
    }
}

/// The estimated ratio in a judge's explanation ("error ratio 2.0x …").
fn ratio(text: &str, what: &str) -> f64 {
    text.split(&format!("{what} ratio "))
        .nth(1)
        .and_then(|r| r.split('x').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no {what} ratio in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_promotes_a_healthy_canary_across_a_restart_and_rolls_back_twice_the_errors() {
    let w = world(
        json!({"name": "request-success-rate", "interval": "2s",
               "judge": {"type": "sequential", "alpha": 0.01, "minEffect": 1.5}}),
        0.005,
    )
    .await;
    let mut w = w;
    let (canaries, client, config) = (w.canaries.clone(), w.client.clone(), w.config.clone());
    // Healthy: the same 1% on both sides. Stop the controller after the judge's first look…
    w.set_image("web:2").await;
    wait_for(WAIT, "the judge's first look", || async {
        let c = canaries.get("web").await.ok()?;
        looks(&c).filter(|(_, n)| *n >= 1).map(|_| ())
    })
    .await;
    w.controller.abort();
    let _ = (&mut w.controller).await;
    let (run, before) = looks(&canaries.get("web").await.unwrap()).unwrap();
    // …and start another: it resumes the evidence from the status instead of starting over.
    w.controller = spawn_controller(client.clone(), config.clone());
    let (run_after, after) = wait_for(WAIT, "a look after the restart", || async {
        let c = canaries.get("web").await.ok()?;
        looks(&c).filter(|(_, n)| *n != before)
    })
    .await;
    assert_eq!(run_after, run);
    assert_eq!(
        after,
        before + 1,
        "the restarted controller resumed the judge"
    );
    w.wait_phase("Succeeded").await;
    let c = canaries.get("web").await.unwrap();
    let (_, total) = looks(&c).unwrap();
    assert!(total >= 3, "the three planned looks: {total}");
    let m = &c.status.as_ref().unwrap().metrics;
    assert!(
        m.iter()
            .all(|m| m.outcome != serin_api::status::Outcome::Fail),
        "{m:?}"
    );

    // Regressed: the canary fails 2% of its requests, twice the primary's 1%.
    w.canary.lock().unwrap().failed = 0.02;
    w.set_image("web:3").await;
    w.wait_phase("Failed").await;
    let c = canaries.get("web").await.unwrap();
    let (new_run, _) = looks(&c).unwrap();
    assert_ne!(new_run, run, "a new revision starts a new test");
    // The rollback event and the metric's status say what the judge saw.
    let message = w.event("Rolling back");
    eprintln!("rollback: {message}");
    for text in [
        message.as_str(),
        c.status.as_ref().unwrap().metrics[0].message.as_str(),
    ] {
        assert!(
            text.contains("request-success-rate: error ratio ")
                && text.contains("(canary ")
                && text.contains(", primary ")
                && text.contains(" ≥ ")
                && text.contains("rolling back"),
            "{text}"
        );
    }
    let r = ratio(&message, "error");
    assert!((1.5..=2.6).contains(&r), "{message}");
    w.controller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_rolls_back_a_canary_with_more_slow_requests_from_histogram_buckets() {
    // 0.5% of the primary's requests take over 250 ms, so its 99th percentile bucket (the
    // bound) is 0.25 s; the canary has 3% over it.
    let w = world(
        json!({"name": "request-duration", "interval": "2s",
               "judge": {"type": "sequential", "alpha": 0.01, "latencyQuantile": 0.99}}),
        0.005,
    )
    .await;
    w.canary.lock().unwrap().slow = 0.03;
    w.set_image("web:2").await;
    w.wait_phase("Failed").await;
    let c = w.canaries.get("web").await.unwrap();
    let record = c.status.as_ref().unwrap().judge.as_ref().unwrap();
    let state = &record.states["request-duration"].0;
    assert_eq!(state["latencyBound"], json!(0.25), "{state:?}");
    let message = w.event("Rolling back");
    eprintln!("rollback: {message}");
    assert!(
        message.contains("request-duration: slow-request ratio ")
            && message.contains(" ≥ ")
            && message.contains("rolling back"),
        "{message}"
    );
    let r = ratio(&message, "slow-request");
    assert!((3.0..=9.0).contains(&r), "{message}");
    w.controller.abort();
}
