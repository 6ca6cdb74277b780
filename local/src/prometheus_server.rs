//! A Prometheus (Debian `prometheus`) that serin starts for a local run: it scrapes the router's
//! metrics every second into a throw-away data directory.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::process::{free_port, wait_http};
use crate::router::RouterError;

pub struct PrometheusServer {
    _dir: tempfile::TempDir,
    child: Child,
    pub url: String,
}

impl PrometheusServer {
    /// Starts Prometheus scraping each job's targets (`host:port`, path `/metrics`) every second;
    /// series carry the job's name in the `job` label.
    pub async fn start(jobs: &[(&str, Vec<String>)]) -> Result<Self, RouterError> {
        let dir = tempfile::Builder::new()
            .prefix("serin-prometheus-")
            .tempdir()
            .map_err(|source| RouterError::Io {
                what: "creating Prometheus' directory".into(),
                source,
            })?;
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, targets) in jobs {
            let targets = targets
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ");
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{targets}]\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(|source| RouterError::Io {
            what: "writing prometheus.yml".into(),
            source,
        })?;
        let port = free_port().map_err(|e| RouterError::Process(e.to_string()))?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        crate::process::die_with_parent(&mut command, libc::SIGKILL);
        let mut child = command
            .spawn()
            .map_err(|e| {
                RouterError::Process(format!(
                    "cannot start prometheus: {e} (install it with `apt-get install prometheus`, or pass --metrics-server)"
                ))
            })?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while wait_http(&format!("{url}/-/ready")).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RouterError::Process(format!(
                    "prometheus exited at start ({status})"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RouterError::Process(
                    "prometheus not ready within 30s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            _dir: dir,
            child,
            url,
        })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
