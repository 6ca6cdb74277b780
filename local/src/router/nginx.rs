//! A real nginx as the router: an upstream with the primary and the canary weighted
//! (`server 127.0.0.1:P weight=N`, `down` at 0), rewritten and reloaded (`nginx -s reload`) at
//! each step, with its own prefix and configuration in a temporary directory. serin waits until
//! the new workers answer (a generation number served on `/__serin/generation`).
//!
//! nginx has no Prometheus exporter built in, so the builtin metrics come from its access log
//! (`$msec $upstream_addr $status $upstream_response_time`), read into the same per-backend
//! accounting as the embedded router's.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::process::{Child, Command};

use super::stats::{BackendStats, Totals, Window};
use super::{Backend, RouterError, Routes};

struct Log {
    offset: u64,
    partial: String,
    stats: [BackendStats; 2],
}

pub struct NginxRouter {
    dir: tempfile::TempDir,
    child: Child,
    listen: String,
    primary: String,
    canary: String,
    routes: Routes,
    generation: u64,
    log: Mutex<Log>,
    http: reqwest::Client,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> RouterError + '_ {
    move |source| RouterError::Io {
        what: what.to_owned(),
        source,
    }
}

fn host_port(url: &str, which: &str) -> Result<String, RouterError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| RouterError::Backend {
            which: which.into(),
            url: url.into(),
            reason: "nginx needs an http://host:port URL".into(),
        })?;
    Ok(rest.trim_end_matches('/').to_owned())
}

impl NginxRouter {
    pub async fn start(listen: &str, primary: &str, canary: &str) -> Result<Self, RouterError> {
        let dir = tempfile::Builder::new()
            .prefix("serin-nginx-")
            .tempdir()
            .map_err(io("creating nginx's prefix directory"))?;
        std::fs::create_dir_all(dir.path().join("tmp")).map_err(io("creating nginx's temp dir"))?;
        let mut router = Self {
            child: Command::new("true")
                .spawn()
                .map_err(io("starting a placeholder"))?,
            dir,
            listen: listen.to_owned(),
            primary: primary.to_owned(),
            canary: canary.to_owned(),
            routes: Routes::all_primary(),
            generation: 1,
            log: Mutex::new(Log {
                offset: 0,
                partial: String::new(),
                stats: [
                    BackendStats::new(Instant::now()),
                    BackendStats::new(Instant::now()),
                ],
            }),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| RouterError::Process(e.to_string()))?,
        };
        router.write_conf()?;
        let _ = router.child.wait().await;
        let mut command = Command::new("nginx");
        command
            .args(router.nginx_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SIGKILL (tokio's kill_on_drop) would stop only the master and leave its workers serving
        // the listen port; SIGTERM is nginx's fast shutdown, workers included.
        crate::process::die_with_parent(&mut command, libc::SIGTERM);
        router.child = command.spawn().map_err(|e| {
            RouterError::Process(format!(
                "cannot start nginx: {e} (install it with `apt-get install nginx`)"
            ))
        })?;
        router.wait_generation().await?;
        Ok(router)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    fn nginx_args(&self) -> Vec<String> {
        let d = self.dir.path().display();
        vec![
            "-p".into(),
            format!("{d}/"),
            "-c".into(),
            self.conf_path().display().to_string(),
            "-e".into(),
            format!("{d}/error.log"),
            "-g".into(),
            "daemon off;".into(),
        ]
    }

    fn write_conf(&self) -> Result<(), RouterError> {
        let d = self.dir.path().display();
        let server = |url: &str, which: &str, weight: u32| -> Result<String, RouterError> {
            let hp = host_port(url, which)?;
            Ok(if weight == 0 {
                format!("server {hp} down;")
            } else {
                format!("server {hp} weight={weight};")
            })
        };
        let conf = format!(
            r#"worker_processes 1;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  log_format serin '$msec $upstream_addr $status $upstream_response_time';
  upstream serin_backends {{
    {}
    {}
    keepalive 64;
  }}
  server {{
    listen {};
    location = /__serin/generation {{ return 200 "{}"; }}
    location / {{
      access_log {d}/access.log serin;
      proxy_pass http://serin_backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_next_upstream off;
    }}
  }}
}}
"#,
            server(&self.primary, "primary", self.routes.primary)?,
            server(&self.canary, "canary", self.routes.canary)?,
            self.listen,
            self.generation
        );
        let tmp = self.dir.path().join(".nginx.conf.tmp");
        std::fs::write(&tmp, conf).map_err(io("writing nginx.conf"))?;
        std::fs::rename(&tmp, self.conf_path()).map_err(io("replacing nginx.conf"))
    }

    async fn wait_generation(&mut self) -> Result<(), RouterError> {
        let url = format!("http://{}/__serin/generation", self.listen);
        let want = self.generation.to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.text().await.is_ok_and(|t| t == want)
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(RouterError::Process(format!(
                    "nginx exited ({status}); see {}/error.log (is {} free?)",
                    self.dir.path().display(),
                    self.listen
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RouterError::Process(format!(
                    "nginx did not serve configuration {want} within 15s (see {}/error.log)",
                    self.dir.path().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn reload(&mut self) -> Result<(), RouterError> {
        // Read what the old configuration logged before its backends change meaning.
        self.ingest();
        self.generation += 1;
        self.write_conf()?;
        let mut args = self.nginx_args();
        args.truncate(6);
        args.extend(["-s".into(), "reload".into()]);
        let out = Command::new("nginx")
            .args(&args)
            .output()
            .await
            .map_err(io("running nginx -s reload"))?;
        if !out.status.success() {
            return Err(RouterError::Process(format!(
                "nginx -s reload failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        self.wait_generation().await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn set_routes(&mut self, routes: Routes) -> Result<(), RouterError> {
        self.routes = routes;
        self.reload().await
    }

    pub async fn set_backends(&mut self, primary: &str, canary: &str) -> Result<(), RouterError> {
        let canary_changed = canary != self.canary;
        self.primary = primary.to_owned();
        self.canary = canary.to_owned();
        self.reload().await?;
        if canary_changed {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.stats[1] = BackendStats::new(Instant::now());
        }
        Ok(())
    }

    pub fn backends(&self) -> (&str, &str) {
        (&self.primary, &self.canary)
    }

    /// Reads the access log lines written since the last call into the accounting.
    fn ingest(&self) {
        let path = self.dir.path().join("access.log");
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(mut f) = std::fs::File::open(&path) else {
            return;
        };
        if f.seek(SeekFrom::Start(log.offset)).is_err() {
            return;
        }
        let mut buf = String::new();
        let Ok(n) = f.read_to_string(&mut buf) else {
            return;
        };
        log.offset += n as u64;
        let mut text = std::mem::take(&mut log.partial);
        text.push_str(&buf);
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        log.partial = text[complete..].to_owned();
        let primary = host_port(&self.primary, "primary").unwrap_or_default();
        let canary = host_port(&self.canary, "canary").unwrap_or_default();
        let (now_i, now_s) = (Instant::now(), unix_now());
        for line in text[..complete].lines() {
            let Some(entry) = parse_line(line) else {
                continue;
            };
            // The primary wins when both are the same server (after a promotion).
            let backend = if entry.upstream == primary {
                Backend::Primary
            } else if entry.upstream == canary {
                Backend::Canary
            } else {
                continue;
            };
            let age = Duration::from_secs_f64((now_s - entry.at).max(0.0));
            let at = now_i.checked_sub(age).unwrap_or(now_i);
            let stats = &mut log.stats[backend.index()];
            stats.dispatched(at);
            stats.record(at, entry.latency, entry.status >= 500, false);
        }
    }

    pub fn counts(&self) -> [u64; 2] {
        self.ingest();
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        [
            log.stats[0].totals().requests,
            log.stats[1].totals().requests,
        ]
    }

    pub fn canary_window(&self, window: Duration) -> Window {
        self.ingest();
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.stats[1].window(Instant::now(), window)
    }

    /// `[primary, canary]` cumulative counts.
    pub fn totals(&self) -> [Totals; 2] {
        self.ingest();
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        [log.stats[0].totals(), log.stats[1].totals()]
    }

    /// `[primary, canary]` over `window`.
    pub fn windows(&self, window: Duration) -> [Window; 2] {
        self.ingest();
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        [
            log.stats[0].window(now, window),
            log.stats[1].window(now, window),
        ]
    }

    /// nginx's fast shutdown (SIGTERM: the master stops its workers, then exits); SIGKILL only
    /// when it has not exited within 5 s.
    pub async fn shutdown(mut self) {
        self.terminate();
        let exited = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if exited.is_err() {
            let _ = self.child.kill().await;
        }
    }

    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a pid of our own unreaped child: no other process can have it.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
}

impl Drop for NginxRouter {
    /// Error paths drop the router without `shutdown`: nginx still stops, workers included.
    fn drop(&mut self) {
        self.terminate();
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct Entry {
    at: f64,
    upstream: String,
    status: u16,
    latency: Duration,
}

/// Parses `$msec $upstream_addr $status $upstream_response_time`.
fn parse_line(line: &str) -> Option<Entry> {
    let mut parts = line.split(' ');
    let at = parts.next()?.parse::<f64>().ok()?;
    let upstream = parts.next()?.to_owned();
    let status = parts.next()?.parse::<u16>().ok()?;
    // "-" when nginx could not get an answer: counted with no latency.
    let latency = parts
        .next()
        .and_then(|t| t.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or_default();
    Some(Entry {
        at,
        upstream,
        status,
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_log_lines() {
        let e = parse_line("1763784000.123 127.0.0.1:9001 502 0.004").unwrap();
        assert_eq!(e.upstream, "127.0.0.1:9001");
        assert_eq!(e.status, 502);
        assert_eq!(e.latency, Duration::from_millis(4));
        let e = parse_line("1763784000.123 127.0.0.1:9001 502 -").unwrap();
        assert_eq!(e.latency, Duration::ZERO);
        assert!(parse_line("garbage").is_none());
    }
}
