//! Templates mean what their authors meant: every MetricTemplate style of Flagger's docs and e2e
//! tests (our own corpus, `tests/fixtures/templates/`), rendered for serin's object names, selects
//! the canary's series and none of the primary's, checked against a real Prometheus.
//!
//! Two exporters play the two sides with the label values each router, mesh or scrape setup gives
//! them under serin's names (canary pods `web-canary-…`, stable pods `web-…`, Services `web-canary`
//! and `web-primary`). The canary answers 90% of requests successfully, the primary 99%, so a
//! query that mixes both sides returns ~98.2 and one that matches nothing returns no data: only a
//! query that selects exactly one side returns that side's figure.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use serin_api::template::{TemplateVars, render};
use serin_api::validate::{Severity, validate_document};
use serin_testkit::prometheus::{Prometheus, Target};
use serin_testkit::support::wait_for;

const CANARY_SUCCESS: f64 = 90.0;
const PRIMARY_SUCCESS: f64 = 99.0;

/// One series family: metric name, the status label and its success/error values, and the
/// labels that tell the canary's series from the primary's.
struct Family {
    metric: &'static str,
    status: (&'static str, &'static str, &'static str),
    canary: &'static str,
    primary: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        metric: "istio_requests_total",
        status: ("response_code", "200", "503"),
        canary: r#"reporter="destination",destination_workload_namespace="prod",destination_workload="web-canary",destination_service_name="web-canary""#,
        primary: r#"reporter="destination",destination_workload_namespace="prod",destination_workload="web",destination_service_name="web-primary""#,
    },
    Family {
        metric: "response_total",
        status: ("classification", "success", "failure"),
        canary: r#"namespace="prod",deployment="web-canary",direction="inbound""#,
        primary: r#"namespace="prod",deployment="web",direction="inbound""#,
    },
    Family {
        metric: "http_request_duration_seconds_count",
        status: ("status", "200", "500"),
        canary: r#"kubernetes_namespace="prod",kubernetes_pod_name="web-canary-7f9c8d6b4-z9y8x""#,
        primary: r#"kubernetes_namespace="prod",kubernetes_pod_name="web-6d8f7c9b5-a1b2c""#,
    },
    Family {
        metric: "http_requests_total",
        status: ("status", "200", "500"),
        canary: r#"app="web-canary""#,
        primary: r#"app="web""#,
    },
    // Pod-template hashes in Kubernetes' safe alphabet (letters up to z, not hex).
    Family {
        metric: "http_requests_total",
        status: ("status", "200", "500"),
        canary: r#"pod="web-canary-6c8d5hx7fq-b8n2k""#,
        primary: r#"pod="web-5f7c9gxkq8-z9v4t""#,
    },
    Family {
        metric: "traefik_service_requests_total",
        status: ("code", "200", "500"),
        canary: r#"service="prod-web-canary-80@kubernetescrd""#,
        primary: r#"service="prod-web-primary-80@kubernetescrd""#,
    },
    Family {
        metric: "envoy_cluster_upstream_rq",
        status: ("envoy_response_code", "200", "503"),
        canary: r#"envoy_cluster_name="prod_web-canary_80""#,
        primary: r#"envoy_cluster_name="prod_web-primary_80""#,
    },
    Family {
        metric: "envoy_cluster_upstream_rq",
        status: ("envoy_response_code", "200", "503"),
        canary: r#"envoy_cluster_name="httproute/prod/web/rule/0/backend/1",backend_service="web-canary""#,
        primary: r#"envoy_cluster_name="httproute/prod/web/rule/0/backend/0",backend_service="web-primary""#,
    },
    Family {
        metric: "nginx_ingress_controller_requests",
        status: ("status", "200", "500"),
        canary: r#"namespace="prod",ingress="web",canary="prod-web-canary-80""#,
        primary: r#"namespace="prod",ingress="web",canary="""#,
    },
    Family {
        metric: "osm_request_total",
        status: ("response_code", "200", "500"),
        canary: r#"destination_namespace="prod",destination_kind="Deployment",destination_name="web-canary""#,
        primary: r#"destination_namespace="prod",destination_kind="Deployment",destination_name="web""#,
    },
];

/// An exporter whose counters grow at `success` good and `100 - success` bad requests a second.
async fn exporter(canary: bool, success: f64) -> String {
    let started = Instant::now();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move {
            let t = started.elapsed().as_secs_f64();
            let mut text = String::new();
            for f in FAMILIES {
                let labels = if canary { f.canary } else { f.primary };
                let (status, ok, bad) = f.status;
                for (code, rate) in [(ok, success), (bad, 100.0 - success)] {
                    text.push_str(&format!(
                        "{}{{{labels},{status}=\"{code}\"}} {}\n",
                        f.metric,
                        rate * t
                    ));
                }
            }
            text
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

/// The corpus: (file, template, which side it must select).
fn corpus() -> Vec<(String, Value, &'static str)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for doc in text.split("\n---\n") {
            let side = if doc.contains("# selects: primary") {
                "primary"
            } else {
                assert!(doc.contains("# selects: canary"), "{name}: no `# selects:`");
                "canary"
            };
            let value: Value = serde_saphyr::from_str(doc).unwrap();
            out.push((name.clone(), value, side));
        }
    }
    out
}

async fn instant(prom: &str, query: &str) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", query)])
        .ok()?;
    let answer: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_style_selects_one_side_in_a_real_prometheus() {
    let corpus = corpus();
    assert!(corpus.len() >= 12, "corpus has {} templates", corpus.len());
    let canary: serin_api::Canary = serde_json::from_value(serde_json::json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80}, "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10}}
    }))
    .unwrap();
    let variables = BTreeMap::from([
        ("reporter".to_string(), "destination".to_string()),
        ("direction".to_string(), "inbound".to_string()),
    ]);
    let vars = TemplateVars::for_canary(&canary.spec, "web", "prod", "1m", variables);

    let dir = tempfile::tempdir().unwrap();
    let canary_addr = exporter(true, CANARY_SUCCESS).await;
    let primary_addr = exporter(false, PRIMARY_SUCCESS).await;
    let prom = Prometheus::start(
        dir.path(),
        "500ms",
        &[
            Target {
                address: canary_addr,
                labels: &[("job", "web-canary")],
            },
            Target {
                address: primary_addr,
                labels: &[("job", "web-primary")],
            },
        ],
    )
    .await;
    // rate() needs two samples of every series.
    let probe = r#"count(rate(istio_requests_total[1m]) > 0)"#;
    wait_for(Duration::from_secs(60), "two scrapes of both sides", || {
        let url = prom.url.clone();
        async move { instant(&url, probe).await.filter(|n| *n >= 4.0) }
    })
    .await;

    let mut checked = 0;
    for (file, template, side) in &corpus {
        let name = template["metadata"]["name"].as_str().unwrap();
        // Every style here maps with certainty: no error and no warning.
        let warnings: Vec<_> = validate_document(template)
            .into_iter()
            .filter(|d| matches!(d.severity, Severity::Error | Severity::Warning))
            .collect();
        assert!(warnings.is_empty(), "{file} {name}: {warnings:?}");
        let query = render(template["spec"]["query"].as_str().unwrap(), &vars)
            .unwrap_or_else(|e| panic!("{file} {name}: {e}"));
        let expected = if *side == "canary" {
            CANARY_SUCCESS
        } else {
            PRIMARY_SUCCESS
        };
        let value = instant(&prom.url, &query).await;
        assert!(
            value.is_some_and(|v| (v - expected).abs() < 0.5),
            "{file} {name}: expected the {side}'s {expected}, got {value:?} from\n{query}"
        );
        checked += 1;
    }
    assert_eq!(checked, corpus.len());

    // docs/judge.md's count queries: each side's failures over its total is that side's rate.
    let counts = judge_doc_queries();
    let value = |side: &str| {
        let (total, failed) = (
            &counts[&format!("{side}Total")],
            &counts[&format!("{side}Failed")],
        );
        let (total, failed) = (
            render(total, &vars).unwrap(),
            render(failed, &vars).unwrap(),
        );
        let url = prom.url.clone();
        async move { Some((instant(&url, &failed).await?, instant(&url, &total).await?)) }
    };
    for (side, success) in [("canary", CANARY_SUCCESS), ("primary", PRIMARY_SUCCESS)] {
        let (failed, total) = value(side)
            .await
            .unwrap_or_else(|| panic!("{side}: no data"));
        assert!(
            total > 0.0 && ((failed / total) - (1.0 - success / 100.0)).abs() < 0.005,
            "docs/judge.md {side} counts select the wrong pods: {failed} of {total}"
        );
    }
}

/// The four `judge:` queries of docs/judge.md's example.
fn judge_doc_queries() -> BTreeMap<String, String> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/judge.md");
    let text = std::fs::read_to_string(doc).unwrap();
    let queries: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| {
            let (key, query) = l.trim().split_once(':')?;
            let known = [
                "canaryTotal",
                "canaryFailed",
                "primaryTotal",
                "primaryFailed",
            ];
            known
                .contains(&key)
                .then(|| (key.to_string(), query.trim().to_string()))
        })
        .collect();
    assert_eq!(queries.len(), 4, "docs/judge.md example: {queries:?}");
    queries
}
