//! `serin simulate`: what the engine would do, tick by tick, for scripted metric values and
//! webhook results, on a virtual clock (instant, whatever the interval).
//!
//! Exit codes: 0 promoted, 1 rolled back, 2 bad input, 3 no verdict within `--duration`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use serin_analysis::sim::{
    self, MetricScript, Scenario, Scripted, Simulation, Verdict, WebhookScript, Window,
};
use serin_api::duration;
use serin_api::validate::{Severity, parse_stream, validate_document};
use serin_api::{Canary, Strategy};

#[derive(clap::Args)]
pub struct Args {
    /// Manifests holding the Canary (other kinds, e.g. MetricTemplates, are accepted and ignored).
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    files: Vec<String>,
    /// The Canary to simulate when the files hold several.
    #[arg(long, value_name = "NAME")]
    canary: Option<String>,
    /// A metric's value, optionally in a window of virtual time: `error-rate=4.2@3m-6m`,
    /// `error-rate=4.2@3m` (from 3m on). Later flags win where windows overlap.
    #[arg(long = "metric", value_name = "NAME=VALUE[@FROM-TO]")]
    metrics: Vec<String>,
    /// A webhook that fails: `load-test=fail@2m-4m` (a rollback hook "fails" = signals rollback).
    #[arg(long = "webhook", value_name = "NAME=fail[@FROM-TO]")]
    webhooks: Vec<String>,
    /// A metric that returns no data: `request-duration@1m-2m`.
    #[arg(long = "no-data", value_name = "NAME[@FROM-TO]")]
    no_data: Vec<String>,
    /// A metric whose query fails: `error-rate@5m`.
    #[arg(long = "error", value_name = "NAME[@FROM-TO]")]
    errors: Vec<String>,
    /// Counts for a metric with a `judge`, per interval: requests/failures of each side,
    /// `request-success-rate=canary=1000/12,primary=9000/90@0m-5m` (NAME= may be left out when
    /// one metric has a judge).
    #[arg(
        long = "counts",
        value_name = "[NAME=]canary=N/F,primary=N/F[@FROM-TO]"
    )]
    counts: Vec<String>,
    /// How long the canary takes to become ready after scale-up.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    canary_ready_after: String,
    /// How long the stable workload takes to roll out the promoted revision.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    primary_ready_after: String,
    /// `serin abort` at this virtual time: the analysis rolls back at the first tick from then.
    #[arg(long, value_name = "DURATION")]
    abort_at: Option<String>,
    /// `serin promote` at this virtual time: the remaining analysis is skipped.
    #[arg(long, value_name = "DURATION")]
    promote_at: Option<String>,
    /// `serin halt` from FROM, `serin approve` at TO: the analysis holds in between
    /// (`--halt 2m-5m`; repeatable).
    #[arg(long = "halt", value_name = "FROM-TO")]
    halts: Vec<String>,
    /// Give up without a verdict after this much virtual time.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    duration: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (namespace, name, canary) = load_canary(&args.files, args.canary.as_deref())?;
    let spec = &canary.spec;
    let scenario = scenario(&args, spec)?;
    let s = sim::simulate(&namespace, &name, spec, &scenario);
    let text = match args.output {
        Output::Json => serde_json::to_string_pretty(&s)? + "\n",
        Output::Text => render(&namespace, &name, &canary, &s),
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(ExitCode::from(match s.verdict {
        Verdict::Promoted => 0,
        Verdict::RolledBack => 1,
        Verdict::Undecided => 3,
    }))
}

fn load_canary(files: &[String], wanted: Option<&str>) -> anyhow::Result<(String, String, Canary)> {
    let mut found: Vec<(String, Value)> = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("-f {file}: cannot read"))?;
        let docs = parse_stream(&text).map_err(|e| anyhow::anyhow!("-f {file}: {e}"))?;
        for doc in docs {
            if doc.get("kind").and_then(Value::as_str) == Some("Canary") {
                found.push((file.clone(), doc));
            }
        }
    }
    let name_of = |d: &Value| {
        d.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some(w) = wanted {
        found.retain(|(_, d)| name_of(d) == w);
    }
    let (file, doc) = match found.len() {
        1 => found.remove(0),
        0 => match wanted {
            Some(w) => bail!("--canary {w}: no Canary of that name in the files given with -f"),
            None => bail!("-f: no Canary (kind: Canary) in the files given"),
        },
        _ => bail!(
            "-f: the files hold {} Canaries ({}); choose one with --canary NAME",
            found.len(),
            found
                .iter()
                .map(|(_, d)| name_of(d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let problems: Vec<String> = validate_document(&doc)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{file}: {}: {}", d.path, d.message))
        .collect();
    if !problems.is_empty() {
        bail!(
            "the Canary is not valid (see `serin validate`):\n  {}",
            problems.join("\n  ")
        );
    }
    let canary: Canary = serde_json::from_value(doc.clone())
        .map_err(|e| anyhow::anyhow!("{file}: the Canary does not parse: {e}"))?;
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    Ok((namespace, name_of(&doc), canary))
}

/// `--counts [NAME=]canary=N/F,primary=N/F[@FROM-TO]` for a metric with a `judge`.
fn counts_script(arg: &str, spec: &serin_api::CanarySpec) -> anyhow::Result<MetricScript> {
    let usage = "expected [NAME=]canary=N/F,primary=N/F[@FROM-TO], e.g. canary=1000/12,primary=9000/90@0m-5m";
    let judged: Vec<&str> = spec
        .metrics()
        .iter()
        .filter(|m| m.judge.is_some())
        .map(|m| m.name.as_str())
        .collect();
    let (name, rest) = match arg.split_once('=') {
        Some((n, r)) if n != "canary" && n != "primary" => (n.to_string(), r),
        _ => match judged.as_slice() {
            [one] => (one.to_string(), arg),
            [] => bail!("--counts {arg}: no metric of the Canary has a `judge`"),
            _ => bail!(
                "--counts {arg}: several metrics have a judge ({}); write NAME=…",
                judged.join(", ")
            ),
        },
    };
    if !judged.contains(&name.as_str()) {
        bail!(
            "--counts {arg}: the Canary has no metric {name:?} with a `judge` (judged: {})",
            if judged.is_empty() {
                "none".to_string()
            } else {
                judged.join(", ")
            }
        );
    }
    let (sides, window) = split_window("--counts", arg, rest)?;
    let mut canary = None;
    let mut primary = None;
    for part in sides.split(',') {
        let (side, nf) = part
            .split_once('=')
            .with_context(|| format!("--counts {arg}: {usage}"))?;
        let (n, f) = nf
            .split_once('/')
            .with_context(|| format!("--counts {arg}: {usage}"))?;
        let num = |x: &str| {
            x.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let (Some(count), Some(failures)) = (num(n), num(f)) else {
            bail!("--counts {arg}: {nf:?} must be two counts ≥ 0, requests/failures");
        };
        if failures > count {
            bail!("--counts {arg}: {side} has more failures ({failures}) than requests ({count})");
        }
        let sample = serin_analysis::Sample {
            count,
            failures,
            values: vec![],
        };
        match side.trim() {
            "canary" => canary = Some(sample),
            "primary" => primary = Some(sample),
            other => bail!("--counts {arg}: unknown side {other:?}; use canary and primary"),
        }
    }
    let (Some(canary), Some(primary)) = (canary, primary) else {
        bail!("--counts {arg}: give both sides; {usage}");
    };
    Ok(MetricScript {
        name,
        window,
        result: Scripted::Counts { canary, primary },
    })
}

fn scenario(args: &Args, spec: &serin_api::CanarySpec) -> anyhow::Result<Scenario> {
    let metric_names: Vec<&str> = spec.metrics().iter().map(|m| m.name.as_str()).collect();
    let hook_names: Vec<&str> = spec.webhooks().iter().map(|h| h.name.as_str()).collect();
    let known = |flag: &str, arg: &str, name: &str, names: &[&str], what: &str| {
        if names.contains(&name) {
            Ok(())
        } else {
            let list = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            Err(anyhow::anyhow!(
                "{flag} {arg}: the Canary has no {what} {name:?} ({what}s: {list})"
            ))
        }
    };
    let mut metrics = Vec::new();
    for arg in &args.metrics {
        let (name, rest) = arg.split_once('=').with_context(|| {
            format!("--metric {arg}: expected NAME=VALUE[@FROM-TO], e.g. error-rate=4.2@3m-6m")
        })?;
        let (value, window) = split_window("--metric", arg, rest)?;
        let value: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| !v.is_infinite())
            .with_context(|| format!("--metric {arg}: value must be a number"))?;
        known("--metric", arg, name, &metric_names, "metric")?;
        metrics.push(MetricScript {
            name: name.into(),
            window,
            result: Scripted::Value(value),
        });
    }
    for (flag, list, result) in [
        ("--no-data", &args.no_data, Scripted::NoData),
        ("--error", &args.errors, Scripted::Error),
    ] {
        for arg in list {
            let (name, window) = split_window(flag, arg, arg)?;
            known(flag, arg, name, &metric_names, "metric")?;
            metrics.push(MetricScript {
                name: name.into(),
                window,
                result: result.clone(),
            });
        }
    }
    for arg in &args.counts {
        metrics.push(counts_script(arg, spec)?);
    }
    let mut failing_webhooks = Vec::new();
    for arg in &args.webhooks {
        let (name, rest) = arg.split_once('=').with_context(|| {
            format!("--webhook {arg}: expected NAME=fail[@FROM-TO], e.g. load-test=fail@2m-4m")
        })?;
        let (what, window) = split_window("--webhook", arg, rest)?;
        if what != "fail" {
            bail!("--webhook {arg}: the only scripted result is `fail` (webhooks pass by default)");
        }
        known("--webhook", arg, name, &hook_names, "webhook")?;
        failing_webhooks.push(WebhookScript {
            name: name.into(),
            window,
        });
    }
    Ok(Scenario {
        metrics,
        failing_webhooks,
        canary_ready_after_ms: millis("--canary-ready-after", &args.canary_ready_after)?,
        primary_ready_after_ms: millis("--primary-ready-after", &args.primary_ready_after)?,
        duration_ms: millis("--duration", &args.duration)?,
        abort_at_ms: args
            .abort_at
            .as_deref()
            .map(|t| millis("--abort-at", t))
            .transpose()?,
        promote_at_ms: args
            .promote_at
            .as_deref()
            .map(|t| millis("--promote-at", t))
            .transpose()?,
        halts: args
            .halts
            .iter()
            .map(|arg| halt_window(arg))
            .collect::<anyhow::Result<_>>()?,
    })
}

/// `--halt FROM-TO`: both ends, so the halt is approved again within the run.
fn halt_window(arg: &str) -> anyhow::Result<Window> {
    let (_, window) = split_window("--halt", arg, &format!("@{arg}"))?;
    if window.to_ms.is_none() {
        bail!(
            "--halt {arg}: give the end too, FROM-TO (e.g. 2m-5m): `serin approve` resumes at TO"
        );
    }
    Ok(window)
}

/// `X@FROM-TO` → (X, window); no `@` is the whole run.
fn split_window<'a>(flag: &str, arg: &str, text: &'a str) -> anyhow::Result<(&'a str, Window)> {
    let Some((head, range)) = text.split_once('@') else {
        return Ok((text, Window::default()));
    };
    let (from, to) = match range.split_once('-') {
        Some((f, t)) => (f, Some(t).filter(|t| !t.is_empty())),
        None => (range, None),
    };
    let parse = |s: &str| {
        duration::parse(s)
            .map(|d| d.as_millis() as u64)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{flag} {arg}: {s:?} is not a duration ({e}); write e.g. @2m-5m or @90s"
                )
            })
    };
    let window = Window {
        from_ms: parse(from)?,
        to_ms: to.map(parse).transpose()?,
    };
    if window.to_ms.is_some_and(|t| t <= window.from_ms) {
        bail!("{flag} {arg}: the window ends before it starts; write @FROM-TO with FROM < TO");
    }
    Ok((head, window))
}

fn millis(flag: &str, text: &str) -> anyhow::Result<u64> {
    duration::parse(text)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| anyhow::anyhow!("{flag} {text}: not a duration ({e}); write e.g. 30s, 2m, 1h"))
}

fn at(ms: u64) -> String {
    duration::format(Duration::from_millis(ms))
}

fn render(namespace: &str, name: &str, canary: &Canary, s: &Simulation) -> String {
    use std::fmt::Write;
    let spec = &canary.spec;
    let mut out = String::new();
    let plan = match spec.strategy() {
        Strategy::Canary => {
            let steps = spec
                .analysis()
                .and_then(|a| a.step_weights.clone())
                .filter(|s| !s.is_empty())
                .map(|s| format!("stepWeights {s:?}"))
                .unwrap_or_else(|| {
                    format!(
                        "stepWeight {}",
                        spec.analysis().and_then(|a| a.step_weight).unwrap_or(0)
                    )
                });
            format!("canary, {steps}, maxWeight {}", spec.max_weight())
        }
        Strategy::AbTesting => format!("A/B testing, {} iterations", spec.iterations()),
        Strategy::BlueGreen => format!("blue/green, {} iterations", spec.iterations()),
    };
    let _ = writeln!(
        out,
        "Simulating {namespace}/{name}: {plan}, interval {}, threshold {}",
        duration::format(spec.interval()),
        spec.threshold()
    );
    for d in &s.defaulted {
        let _ = writeln!(
            out,
            "note: {} is not scripted at every tick; unscripted ticks use the passing value {}",
            d.metric, d.value
        );
    }
    let _ = writeln!(
        out,
        "{:>7}  {:<16} {:>6}  {:>6}  MESSAGE",
        "TIME", "PHASE", "WEIGHT", "FAILED"
    );
    let threshold = spec.threshold();
    for e in &s.timeline {
        let weight = match spec.strategy() {
            Strategy::Canary => e.weight.to_string(),
            _ => format!("it {}", e.iterations),
        };
        let failed = format!("{}/{threshold}", e.failed_checks);
        let mut messages = e.messages.iter();
        let first = messages.next().map(String::as_str).unwrap_or("");
        let _ = writeln!(
            out,
            "{:>7}  {:<16} {:>6}  {:>6}  {first}",
            at(e.at_ms),
            e.phase.as_str(),
            weight,
            failed
        );
        for m in messages {
            let _ = writeln!(out, "{:>7}  {:<16} {:>6}  {:>6}  {m}", "", "", "", "");
        }
    }
    let end = s.timeline.last().map(|e| e.at_ms).unwrap_or(0);
    let _ = match s.verdict {
        Verdict::Promoted => writeln!(out, "verdict: promoted after {} (exit 0)", at(end)),
        Verdict::RolledBack => writeln!(
            out,
            "verdict: rolled back after {} with {} failed checks (exit 1)",
            at(end),
            s.status.failed_checks
        ),
        Verdict::Undecided => writeln!(out, "verdict: none within {} (exit 3)", at(end)),
    };
    out
}
