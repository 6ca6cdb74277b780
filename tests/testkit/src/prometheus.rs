//! A real Prometheus (Debian package `prometheus`) for tests: scrapes the given targets into a
//! throw-away directory and is killed when dropped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Proc, free_port, wait_for};

/// One scrape target and the labels its series get, e.g. the pod labels the builtin queries
/// select on (`kubernetes_namespace`, `kubernetes_pod_name`).
pub struct Target<'a> {
    pub address: String,
    pub labels: &'a [(&'a str, &'a str)],
}

pub struct Prometheus {
    _proc: Proc,
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus in `dir` scraping `targets` every `scrape_interval` (Prometheus duration
    /// text, e.g. "500ms"); returns once `/-/ready` answers.
    pub async fn start(dir: &Path, scrape_interval: &str, targets: &[Target<'_>]) -> Self {
        let mut config = format!(
            "global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\nscrape_configs:\n  - job_name: apps\n    static_configs:\n"
        );
        for t in targets {
            let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            config.push_str(&format!(
                "      - targets: [\"{}\"]\n        labels: {{{}}}\n",
                t.address,
                labels.join(", ")
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).expect("writing prometheus.yml");
        let port = free_port();
        let proc = Proc(
            Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("prometheus-data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus (Debian package `prometheus`; scripts/test installs it)"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait_for(Duration::from_secs(60), "prometheus /-/ready", || async {
            reqwest::get(&ready)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
        Prometheus { _proc: proc, url }
    }
}
