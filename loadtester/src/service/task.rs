//! Flagger's webhook payload and the task its metadata asks for.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::acceptance::{self, Native, Refused};
use crate::spec::{AttackSpec, RequestSpec, Stop, parse_error_rate, parse_hey_args};

/// Flagger's `CanaryWebhookPayload` (extra fields are ignored).
#[derive(Clone, Debug, Deserialize)]
pub struct Payload {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub checksum: String,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
}

/// What a `POST /` asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// A hey command or a goose scenario, run natively in a worker process.
    Attack {
        spec: AttackSpec,
        /// Identity for dedup: identical tasks for the same canary are not started twice.
        key: String,
        /// What ran, for results: the hey command, or `goose`.
        label: String,
        /// Synchronous mode: answer with the verdict instead of 202.
        wait: bool,
        max_error_rate: Option<f64>,
    },
    /// `bash`, or a `cmd` that is not hey: only with `--allow-shell`.
    Shell { command: String, sync: bool },
    /// `curl … [| grep …]` or `grpc_health_probe …`, run without a shell; `sync` for `bash`.
    Native {
        native: Native,
        command: String,
        sync: bool,
    },
    /// `helm`/`helmv3` with `--allow-helm`: `helm test …` run without a shell.
    Helm { args: Vec<String>, command: String },
}

/// What the service was started to allow beyond native commands.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    pub shell: bool,
    pub helm: bool,
}

/// A 4xx answer: status and a message saying what to fix.
#[derive(Debug, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Rejection {
    Rejection {
        status: 400,
        message: message.into(),
    }
}

/// Metadata values are strings in Flagger (`map[string]string`); numbers and booleans are
/// accepted too, and structured values (a goose `scenario`) may be YAML/JSON text or JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Payload {
    pub fn task(&self, allow_shell: bool) -> Result<Task, Rejection> {
        self.task_for(Allow {
            shell: allow_shell,
            helm: false,
        })
    }

    /// A refused command, logged with the canary and the part that needs a shell.
    fn refuse(&self, field: &str, e: &Refused) -> Rejection {
        tracing::warn!(canary = %format!("{}.{}", self.name, self.namespace), part = %e.part(), "{field} refused: {e}");
        bad(format!("{field}: {e}"))
    }

    /// `cmd`/`bash` commands that are not hey: native when they can be, else a shell if allowed.
    fn native_or_shell(
        &self,
        cmd: String,
        sync: bool,
        allow_shell: bool,
    ) -> Result<Task, Rejection> {
        match acceptance::parse(&cmd) {
            Ok(native) => Ok(Task::Native {
                native,
                command: cmd,
                sync,
            }),
            Err(_) if allow_shell => Ok(Task::Shell { command: cmd, sync }),
            Err(e) => Err(self.refuse(
                if sync {
                    "metadata.cmd (type bash)"
                } else {
                    "metadata.cmd"
                },
                &e,
            )),
        }
    }

    pub fn task_for(&self, allow: Allow) -> Result<Task, Rejection> {
        let allow_shell = allow.shell;
        let Some(meta) = self.metadata.as_ref().filter(|m| !m.is_empty()) else {
            return Err(bad(
                "metadata not found in payload: set the webhook's metadata, e.g. {type: cmd, cmd: \"hey -z 1m -q 10 -c 2 http://app-canary.test/\"}",
            ));
        };
        let get = |k: &str| meta.get(k).map(text);
        let kind = get("type").unwrap_or_else(|| "cmd".to_string());
        let wait = matches!(get("wait").as_deref(), Some("true" | "True" | "1"));
        let max_error_rate = match get("maxErrorRate") {
            Some(v) => {
                Some(parse_error_rate(&v).map_err(|e| bad(format!("metadata.maxErrorRate: {e}")))?)
            }
            None => None,
        };
        let who = format!("{}.{}", self.name, self.namespace);
        match kind.as_str() {
            "cmd" => {
                let Some(cmd) = get("cmd").filter(|c| !c.trim().is_empty()) else {
                    return Err(bad(
                        "metadata.cmd is missing: give a hey command, e.g. \"hey -z 1m -q 10 -c 2 http://app-canary.test/\"",
                    ));
                };
                let words = shell_words::split(&cmd);
                // `hey` or a path to it (`/usr/local/bin/hey`).
                let is_hey = words
                    .as_ref()
                    .ok()
                    .and_then(|w| w.first())
                    .is_some_and(|w| acceptance::program(w) == "hey");
                if !is_hey {
                    return self.native_or_shell(cmd, false, allow_shell);
                }
                if let Err(e) = acceptance::single_command(&cmd) {
                    if allow_shell {
                        return Ok(Task::Shell {
                            command: cmd,
                            sync: false,
                        });
                    }
                    return Err(self.refuse("metadata.cmd", &e));
                }
                let words = words
                    .map_err(|e| bad(format!("metadata.cmd: cannot split the command: {e}")))?;
                let command = match parse_hey_args(&words[1..]) {
                    Ok(c) => c,
                    Err(_) if allow_shell && cmd.contains(['|', ';', '&', '>', '<', '$', '`']) => {
                        return Ok(Task::Shell {
                            command: cmd,
                            sync: false,
                        });
                    }
                    Err(e) => return Err(bad(format!("metadata.cmd: {e}"))),
                };
                if command.body_file.is_some() {
                    return Err(bad(
                        "metadata.cmd: -D (body from a local file) is not allowed in the service; give the body with -d",
                    ));
                }
                Ok(Task::Attack {
                    spec: command.spec,
                    key: format!("{who} {cmd}"),
                    label: cmd,
                    wait,
                    max_error_rate: max_error_rate.or(command.max_error_rate),
                })
            }
            "goose" => {
                let spec = goose_spec(meta)?;
                let canonical = serde_json::to_string(meta).unwrap_or_default();
                Ok(Task::Attack {
                    spec,
                    key: format!("{who} goose {canonical}"),
                    label: "goose".into(),
                    wait,
                    max_error_rate,
                })
            }
            "bash" => {
                let Some(cmd) = get("cmd").filter(|c| !c.trim().is_empty()) else {
                    return Err(bad(
                        "metadata.cmd is missing: give the command to run, e.g. \"curl -sd 'test' http://app-canary.test/token | grep token\"",
                    ));
                };
                self.native_or_shell(cmd, true, allow_shell)
            }
            "helm" | "helmv3" => self.helm(get("cmd"), &kind, allow.helm),
            "kubectl" | "concord" | "ngrinder" => Err(bad(format!(
                "metadata.type '{kind}' is not run by serin's loadtester: {}; run it from a Kubernetes Job, or as a native acceptance check (type bash: curl … [| grep …], grpc_health_probe -addr=…)",
                match kind.as_str() {
                    "kubectl" => "it would need cluster credentials in the loadtester",
                    "concord" => "Concord processes need a Concord server and API key",
                    _ => "nGrinder tests need an nGrinder controller and its credentials",
                }
            ))),
            other => Err(bad(format!(
                "metadata.type '{other}' is not supported; use cmd (hey, curl … [| grep …] or grpc_health_probe), goose (a scenario), bash (the same checks, or any command with --allow-shell) or helmv3 (helm test, with --allow-helm)"
            ))),
        }
    }
}

impl Payload {
    /// `helm test …` (Flagger's cmd omits `helm`), run without a shell when allowed and helm is
    /// installed; any other helm command could change the cluster and is refused.
    fn helm(&self, cmd: Option<String>, kind: &str, allow_helm: bool) -> Result<Task, Rejection> {
        let field = format!("metadata.cmd (type {kind})");
        let Some(cmd) = cmd.filter(|c| !c.trim().is_empty()) else {
            return Err(bad(format!(
                "{field} is missing: give the helm test arguments, e.g. \"test podinfo -n test\""
            )));
        };
        acceptance::single_command(&cmd).map_err(|e| self.refuse(&field, &e))?;
        let mut args = shell_words::split(&cmd)
            .map_err(|e| bad(format!("{field}: cannot split the command: {e}")))?;
        if args
            .first()
            .is_some_and(|a| acceptance::program(a) == "helm")
        {
            args.remove(0);
        }
        if args.first().map(String::as_str) != Some("test") {
            return Err(bad(format!(
                "{field}: only `helm test` runs here, '{cmd}' is not one"
            )));
        }
        if !allow_helm {
            return Err(bad(format!(
                "{field}: helm tests are off; start serin loadtester with --allow-helm (chart value loadtester.allowHelm, off by default) in an image with helm and a service account that may run the release's tests"
            )));
        }
        if !on_path("helm") {
            return Err(bad(format!(
                "{field}: --allow-helm is set but no helm binary is on PATH"
            )));
        }
        Ok(Task::Helm { args, command: cmd })
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// One request of a goose scenario, as written in `metadata.scenario`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScenarioRequest {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    expect_status: Option<u16>,
}

fn goose_spec(meta: &BTreeMap<String, Value>) -> Result<AttackSpec, Rejection> {
    let get = |k: &str| meta.get(k).map(text);
    let num = |k: &str| -> Result<Option<f64>, Rejection> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .map(Some)
                .ok_or_else(|| bad(format!("metadata.{k}: expected a number, got '{v}'"))),
        }
    };
    let dur = |k: &str| -> Result<Option<Duration>, Rejection> {
        match get(k) {
            None => Ok(None),
            Some(v) => serin_api::duration::parse(&v).map(Some).map_err(|e| {
                bad(format!(
                    "metadata.{k}: expected a duration like 30s or 1m, got '{v}' ({e})"
                ))
            }),
        }
    };
    let requests: Vec<ScenarioRequest> = match meta.get("scenario") {
        None => {
            return Err(bad(
                "metadata.scenario is missing: a list of requests, e.g. \"[{path: /, weight: 3}, {method: POST, path: /api, body: '{}', expectStatus: 201}]\"",
            ));
        }
        Some(Value::String(s)) => {
            serde_saphyr::from_str(s).map_err(|e| bad(format!("metadata.scenario: {e}")))?
        }
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| bad(format!("metadata.scenario: {e}")))?
        }
    };
    if requests.is_empty() {
        return Err(bad("metadata.scenario: give at least one request"));
    }
    let host = get("host");
    let mut out = Vec::new();
    for (i, r) in requests.into_iter().enumerate() {
        let url = match (&r.url, &r.path, &host) {
            (Some(u), _, _) => u.clone(),
            (None, Some(p), Some(h)) => {
                format!("{}/{}", h.trim_end_matches('/'), p.trim_start_matches('/'))
            }
            (None, None, Some(h)) => h.clone(),
            (None, _, None) => {
                return Err(bad(format!(
                    "metadata.scenario[{i}]: no url, and metadata.host is not set; set host: http://app-canary.test:9898"
                )));
            }
        };
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(bad(format!(
                    "metadata.scenario[{i}]: '{url}' is not an http(s) URL"
                )));
            }
        }
        let method = r
            .method
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase();
        if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(bad(format!(
                "metadata.scenario[{i}].method: '{method}' is not an HTTP method"
            )));
        }
        if r.weight == Some(0) {
            return Err(bad(format!(
                "metadata.scenario[{i}].weight: must be at least 1"
            )));
        }
        out.push(RequestSpec {
            method,
            url,
            headers: r.headers.into_iter().collect(),
            body: r.body,
            weight: r.weight.unwrap_or(1),
            expect_status: r.expect_status,
        });
    }
    let users = num("users")?.unwrap_or(10.0).max(1.0);
    if users > f64::from(crate::spec::MAX_CONCURRENCY) {
        return Err(bad(format!(
            "metadata.users: {users} is out of range: at most {}",
            crate::spec::MAX_CONCURRENCY
        )));
    }
    let users = users as u32;
    let stop = match (dur("duration")?, num("totalRequests")?) {
        (Some(d), _) if !d.is_zero() => Stop::Duration(d),
        (_, Some(n)) if n >= 1.0 => Stop::Requests(n as u64),
        _ => {
            return Err(bad(
                "metadata: set duration (e.g. 1m) or totalRequests (e.g. 1000) for the goose scenario",
            ));
        }
    };
    let (qps, rate) = (
        num("qps")?.filter(|q| *q > 0.0),
        num("rate")?.filter(|r| *r > 0.0),
    );
    for (k, v) in [("qps", qps), ("rate", rate)] {
        if let Some(v) = v {
            crate::spec::check_rate(&format!("metadata.{k}"), v).map_err(|e| bad(e.to_string()))?;
        }
    }
    if qps.is_some() && rate.is_some() {
        return Err(bad(
            "metadata: qps (per user) and rate (total, open model) cannot be combined; pick one",
        ));
    }
    Ok(AttackSpec {
        requests: out,
        concurrency: users,
        stop,
        qps_per_worker: qps,
        rate,
        timeout: Some(dur("timeout")?.unwrap_or(Duration::from_secs(20))),
        disable_keepalive: false,
        disable_compression: false,
        disable_redirects: false,
        http2: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(meta: Value) -> Payload {
        serde_json::from_value(serde_json::json!({"name": "web", "namespace": "test", "phase": "Progressing", "checksum": "x", "metadata": meta})).unwrap()
    }

    #[test]
    fn seed_command_is_native() {
        let t = payload(
            serde_json::json!({"cmd": "hey -z 1m -q 10 -c 2 http://web-canary.test:9898/"}),
        )
        .task(false)
        .unwrap();
        let Task::Attack {
            spec, key, wait, ..
        } = t
        else {
            panic!("{t:?}")
        };
        assert_eq!(spec.concurrency, 2);
        assert!(!wait);
        assert_eq!(
            key,
            "web.test hey -z 1m -q 10 -c 2 http://web-canary.test:9898/"
        );
    }

    #[test]
    fn shell_is_refused_unless_allowed() {
        let e = payload(serde_json::json!({"type": "bash", "cmd": "echo hi"}))
            .task(false)
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("--allow-shell"), "{}", e.message);
        assert!(e.message.contains("`echo`"), "{}", e.message);
        // curl is native now, with or without --allow-shell; curl with a shell operator is not.
        for allow in [false, true] {
            assert!(matches!(
                payload(serde_json::json!({"cmd": "curl http://x/"}))
                    .task(allow)
                    .unwrap(),
                Task::Native { sync: false, .. }
            ));
        }
        let e = payload(serde_json::json!({"cmd": "curl http://x/; id"}))
            .task(false)
            .unwrap_err();
        assert!(
            e.message
                .starts_with("metadata.cmd: `http://x/;` (a command separator) needs a shell"),
            "{}",
            e.message
        );
        assert_eq!(
            payload(serde_json::json!({"cmd": "curl http://x/ > /tmp/x"}))
                .task(true)
                .unwrap(),
            Task::Shell {
                command: "curl http://x/ > /tmp/x".into(),
                sync: false
            }
        );
        let e = payload(serde_json::json!({"cmd": "hey -z 1m http://x/ && id"}))
            .task(false)
            .unwrap_err();
        assert!(e.message.contains("`&&`"), "{}", e.message);
        assert!(matches!(
            payload(serde_json::json!({"type": "bash", "cmd": "true"}))
                .task(true)
                .unwrap(),
            Task::Shell { sync: true, .. }
        ));
    }

    #[test]
    fn helm_tests_only_when_allowed() {
        let task = |cmd: &str, helm: bool| {
            payload(serde_json::json!({"type": "helmv3", "cmd": cmd}))
                .task_for(Allow { shell: true, helm })
        };
        let off = task("test podinfo -n test", false).unwrap_err().message;
        assert!(off.contains("--allow-helm"), "{off}");
        let other = task("uninstall podinfo", true).unwrap_err().message;
        assert!(other.contains("only `helm test`"), "{other}");
        let chained = task("test podinfo; helm uninstall podinfo", true)
            .unwrap_err()
            .message;
        assert!(chained.contains("`podinfo;`"), "{chained}");
        // Whether it then runs depends on a helm binary on PATH.
        match task("helm test podinfo -n test", true) {
            Ok(Task::Helm { args, .. }) => assert_eq!(args, ["test", "podinfo", "-n", "test"]),
            Err(e) => assert!(
                e.message.contains("no helm binary is on PATH"),
                "{}",
                e.message
            ),
            Ok(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_metadata() {
        let msg = |m: Value| payload(m).task(false).unwrap_err().message;
        assert!(msg(serde_json::json!({})).contains("metadata not found"));
        assert!(
            msg(serde_json::json!({"type": "ngrinder"})).contains("'ngrinder' is not run by serin")
        );
        assert!(
            msg(serde_json::json!({"cmd": "hey -q x http://x/"}))
                .contains("-q: expected a number, got 'x'")
        );
        assert!(msg(serde_json::json!({"cmd": "hey -D /etc/passwd http://x/"})).contains("-D"));
        assert!(msg(serde_json::json!({"type": "goose"})).contains("metadata.scenario is missing"));
        assert!(
            msg(serde_json::json!({"type": "goose", "scenario": "[{path: /}]", "duration": "1m"}))
                .contains("metadata.host is not set")
        );
        assert!(
            msg(
                serde_json::json!({"type": "goose", "host": "http://x", "scenario": "[{path: /}]"})
            )
            .contains("duration")
        );
        assert!(msg(serde_json::json!({"type": "goose", "host": "http://x", "scenario": "[{pth: /}]", "duration": "1s"})).contains("metadata.scenario"));
        assert!(
            msg(serde_json::json!({"cmd": "hey http://x/", "maxErrorRate": "lots"}))
                .contains("metadata.maxErrorRate")
        );
    }

    #[test]
    fn goose_scenario_from_yaml_text() {
        let t = payload(serde_json::json!({
            "type": "goose", "host": "http://web-canary.test:9898", "users": "4", "duration": "30s", "qps": "5",
            "wait": "true", "maxErrorRate": "1%",
            "scenario": "- path: /\n  weight: 3\n- method: post\n  path: /api/echo\n  headers: {Content-Type: application/json}\n  body: '{\"a\":1}'\n  expectStatus: 202\n"
        })).task(false).unwrap();
        let Task::Attack {
            spec,
            wait,
            max_error_rate,
            ..
        } = t
        else {
            panic!()
        };
        assert!(wait);
        assert_eq!(max_error_rate, Some(0.01));
        assert_eq!(spec.concurrency, 4);
        assert_eq!(spec.qps_per_worker, Some(5.0));
        assert_eq!(spec.stop, Stop::Duration(Duration::from_secs(30)));
        assert_eq!(spec.requests[0].url, "http://web-canary.test:9898/");
        assert_eq!(spec.requests[0].weight, 3);
        assert_eq!(spec.requests[1].method, "POST");
        assert_eq!(spec.requests[1].expect_status, Some(202));
        assert_eq!(
            spec.requests[1].headers,
            vec![("Content-Type".to_string(), "application/json".to_string())]
        );
    }
}
