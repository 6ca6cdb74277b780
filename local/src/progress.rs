//! Progress of a local run: a readable block per tick on a terminal (phase, weight bar, each
//! metric against its range, failed checks, events), JSON lines otherwise (one object per line
//! with an `event` field: `backends`, `start`, `event`, `tick`, `step`, `done`, `load`).

use std::io::Write;

use serde_json::json;
use serin_api::CanarySpec;
use serin_api::CanaryStatus;
use serin_api::status::Outcome;

use crate::load::{LoadEnd, LoadReport};

/// Where progress goes.
pub struct Reporter {
    json: bool,
    out: Box<dyn Write + Send>,
}

fn bar(weight: i32) -> String {
    let filled = (weight.clamp(0, 100) as usize).div_ceil(5);
    format!("{}{}", "█".repeat(filled), "░".repeat(20 - filled))
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        (Some(a), None) => format!("≥ {a}"),
        (None, Some(b)) => format!("≤ {b}"),
        (None, None) => "any".into(),
    }
}

impl Reporter {
    pub fn new(json: bool, out: Box<dyn Write + Send>) -> Self {
        Self { json, out }
    }

    /// JSON when stdout is not a terminal.
    pub fn stdout() -> Self {
        use std::io::IsTerminal;
        Self::new(
            !std::io::stdout().is_terminal(),
            Box::new(std::io::stdout()),
        )
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    fn line(&mut self, value: serde_json::Value) {
        let _ = writeln!(self.out, "{value}");
        let _ = self.out.flush();
    }

    fn text(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    pub fn start(&mut self, canary: &str, revision: &str, router: &str, url: &str) {
        if self.json {
            self.line(json!({"event": "start", "canary": canary, "revision": revision, "router": router, "url": url}));
        } else {
            self.text(&format!(
                "▶ {canary}: analysing revision {revision} behind the {router} router at {url}"
            ));
        }
    }

    /// Where the primary and the canary answer (after their readiness probes passed).
    pub fn backends(&mut self, primary: &str, canary: &str) {
        if self.json {
            self.line(json!({"event": "backends", "primary": primary, "canary": canary}));
        } else {
            self.text(&format!("  primary {primary}   canary {canary}"));
        }
    }

    pub fn event(&mut self, canary: &str, warning: bool, reason: &str, message: &str) {
        if self.json {
            self.line(json!({"event": "event", "canary": canary, "type": if warning {"Warning"} else {"Normal"}, "reason": reason, "message": message}));
        } else {
            let mark = if warning { "⚠" } else { "·" };
            self.text(&format!("  {mark} {message}"));
        }
    }

    pub fn tick(&mut self, canary: &str, spec: &CanarySpec, status: &CanaryStatus) {
        let phase = status.phase.map(|p| p.as_str()).unwrap_or("");
        if self.json {
            self.line(json!({
                "event": "tick", "canary": canary, "phase": phase,
                "weight": status.canary_weight, "failedChecks": status.failed_checks,
                "threshold": spec.threshold(), "iterations": status.iterations,
                "metrics": status.metrics,
            }));
            return;
        }
        let mut text = format!(
            "{canary:<12} {phase:<16} {} {:>3}%   failed checks {}/{}",
            bar(status.canary_weight),
            status.canary_weight,
            status.failed_checks,
            spec.threshold()
        );
        for m in &status.metrics {
            let range = spec
                .metrics()
                .iter()
                .find(|x| x.name == m.name)
                .map(|x| x.range())
                .unwrap_or_default();
            let mark = match m.outcome {
                Outcome::Pass => "✔",
                Outcome::Fail => "✘",
                Outcome::NoData => "∅",
                Outcome::Error => "!",
            };
            let value = m
                .value
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "–".into());
            text.push_str(&format!(
                "\n    {mark} {:<24} {value:>10}   range {}",
                m.name,
                range_text(range.min, range.max)
            ));
        }
        self.text(&text);
    }

    /// Requests counted at each backend while the canary was at `weight`.
    pub fn step(&mut self, canary: &str, weight: u32, primary: u64, at_canary: u64) {
        if self.json {
            self.line(json!({"event": "step", "canary": canary, "weight": weight, "primary": primary, "canaryRequests": at_canary}));
        }
    }

    pub fn done(&mut self, canary: &str, promoted: bool, message: &str) {
        if self.json {
            self.line(json!({"event": "done", "canary": canary, "result": if promoted {"promoted"} else {"rolledBack"}, "message": message}));
        } else if promoted {
            self.text(&format!("✔ {canary}: promoted — {message}"));
        } else {
            self.text(&format!("✘ {canary}: rolled back — {message}"));
        }
    }

    /// What the `--load` command sent, once the load has ended.
    pub fn load(&mut self, report: &LoadReport) {
        let (end, why) = match &report.end {
            LoadEnd::Finished => ("finished", "its -n/-z reached".to_owned()),
            LoadEnd::Stopped => ("stopped", "stopped with the run".to_owned()),
            LoadEnd::Failed(m) => ("failed", m.clone()),
        };
        if self.json {
            self.line(json!({"event": "load", "command": report.command, "requests": report.requests, "failed": report.failed, "end": end, "message": why}));
        } else {
            self.text(&format!(
                "  load {:?}: {} requests, {} failed ({why})",
                report.command, report.requests, report.failed
            ));
        }
    }
}
