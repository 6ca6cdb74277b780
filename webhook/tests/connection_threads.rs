//! The connection threads of `serve_tls`: connections handed to each thread in turn are all
//! answered, over HTTP/1.1 and HTTP/2 (many streams on one connection, as kube-apiserver sends
//! them), and the threads end when the server future is dropped. Its own test binary, so no other
//! test's server is counted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::review;
use serde_json::json;
use serin_webhook::MemoryCanaryIndex;

/// Threads of this process named by `serve_tls` (`serin-webhook-N`).
fn webhook_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("serin-webhook-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_answered_and_threads_end_with_the_server() {
    assert_eq!(webhook_threads(), 0);
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;

    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "labels": {"serin.dev/canary": "web"},
                     "annotations": {"serin.dev/stable-hash": "0123456789abcdef"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}});
    // Five HTTP/1.1 clients (a connection each, so both threads get some) and one HTTP/2 client
    // sending 40 reviews at once over its single connection.
    let client = |http2: bool| {
        let builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(server.ca.pem.as_bytes()).unwrap()]);
        // The server offers h2 and http/1.1 by ALPN; each client asks for one of them only.
        let builder = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        builder.build().unwrap()
    };
    let mut clients: Vec<(reqwest::Client, usize)> = (0..5).map(|_| (client(false), 8)).collect();
    clients.push((client(true), 40));
    let mut answers = tokio::task::JoinSet::new();
    for (c, (client, count)) in clients.into_iter().enumerate() {
        for n in 0..count {
            let mut body = review(
                "apps",
                "Deployment",
                "UPDATE",
                Some(deployment.clone()),
                None,
            );
            let uid = format!("uid-{c}-{n}");
            body["request"]["uid"] = json!(uid);
            let (client, url) = (client.clone(), format!("{}/mutate", server.url));
            answers.spawn(async move {
                let response = client.post(url).json(&body).send().await.unwrap();
                let version = response.version();
                let body: serde_json::Value = response.json().await.unwrap();
                (uid, version, body)
            });
        }
    }
    let (mut h1_answers, mut h2_answers) = (0, 0);
    while let Some(answer) = answers.join_next().await {
        let (uid, version, body) = answer.unwrap();
        assert_eq!(body["response"]["uid"], uid.as_str());
        assert_eq!(body["response"]["allowed"], true);
        assert_eq!(body["response"]["patchType"], "JSONPatch", "{body}");
        match version {
            reqwest::Version::HTTP_2 => h2_answers += 1,
            reqwest::Version::HTTP_11 => h1_answers += 1,
            other => panic!("answered over {other:?}"),
        }
    }
    assert_eq!((h1_answers, h2_answers), (40, 40));
    assert_eq!(
        webhook_threads(),
        2,
        "serve_tls(.., 2) serves on two threads"
    );

    drop(server);
    // The threads notice their closed queues on their own schedule: wait for it, with a bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while webhook_threads() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connection threads outlived the server",
            webhook_threads()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
