//! `serin status [-n NS] [NAME] [-w]`: Canaries as a table — phase, a weight bar, failed checks
//! against the threshold, and each metric's last value with its range.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use serin_api::Canary;

use super::canary_ops::Target;

#[derive(clap::Args)]
pub struct Args {
    /// One Canary; all in the namespace when absent.
    name: Option<String>,
    #[command(flatten)]
    target: Target,
    /// Keep watching and redraw on every change.
    #[arg(short = 'w', long)]
    watch: bool,
    /// Canaries of every namespace (with a NAMESPACE column); -n is then ignored, as in kubectl.
    #[arg(short = 'A', long, conflicts_with = "name")]
    all_namespaces: bool,
}

const BAR_CELLS: i32 = 10;

/// `[###-------]  30%`; the bar spans 0–100 %.
pub fn weight_bar(weight: i32) -> String {
    let w = weight.clamp(0, 100);
    let filled = ((w * BAR_CELLS) + 50) / 100;
    format!(
        "[{}{}] {w:>3}%",
        "#".repeat(filled as usize),
        "-".repeat((BAR_CELLS - filled) as usize)
    )
}

/// Shortest text that reads back as `v`, rounded when that is long (0.0008, 14.2, 99.8765).
fn number(v: f64) -> String {
    let short = v.to_string();
    if short.len() <= 8 {
        return short;
    }
    let digits = if v.abs() >= 1.0 { 2 } else { 6 };
    let rounded = format!("{v:.digits$}");
    match rounded.contains('.') {
        true => rounded
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        false => rounded,
    }
}

/// What `serin halt`/`serin approve` left on the Canary, so a held analysis says why it waits.
fn gate_line(c: &Canary, st: &serin_api::CanaryStatus) -> Option<String> {
    let gate = c
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(serin_api::labels::GATE_ANNOTATION))
        .map(String::as_str);
    match (gate, st.approved_revision.as_deref()) {
        (Some("halted"), _) => Some(format!(
            "  halted ({}=halted): `serin approve {}` resumes",
            serin_api::labels::GATE_ANNOTATION,
            c.name_any()
        )),
        (_, Some(revision)) => Some(format!("  gates approved for revision {revision}")),
        _ => None,
    }
}

/// The table for `canaries` (in the given order); `namespaces` adds a NAMESPACE column.
pub fn render(canaries: &[Canary], namespaces: bool) -> String {
    if canaries.is_empty() {
        return "No Canaries found.\n".into();
    }
    let mut rows = vec![[
        "NAMESPACE".to_string(),
        "NAME".to_string(),
        "PHASE".into(),
        "WEIGHT".into(),
        "FAILED".into(),
        "LAST TRANSITION".into(),
    ]];
    let mut details: Vec<Vec<String>> = Vec::new();
    for c in canaries {
        let st = c.status.clone().unwrap_or_default();
        rows.push([
            c.namespace().unwrap_or_default(),
            c.name_any(),
            st.phase.map(|p| p.as_str()).unwrap_or("-").to_string(),
            weight_bar(st.canary_weight),
            format!("{}/{}", st.failed_checks, c.spec.threshold()),
            st.last_transition_time
                .clone()
                .unwrap_or_else(|| "-".into()),
        ]);
        let mut lines = Vec::new();
        for m in c.spec.metrics() {
            let range = m.range();
            let bound = |b: Option<f64>| b.map(number).unwrap_or_else(|| "·".into());
            let last = st.metrics.iter().find(|s| s.name == m.name);
            let (outcome, value) = match last {
                Some(s) => (
                    s.outcome.as_str().to_string(),
                    s.value.map(number).unwrap_or_else(|| "-".into()),
                ),
                None => ("-".into(), "-".into()),
            };
            lines.push(format!(
                "  {:<24} {:<7} {:>10}  range [{}, {}]{}",
                m.name,
                outcome,
                value,
                bound(range.min),
                bound(range.max),
                last.filter(|s| !s.message.is_empty())
                    .map(|s| format!("  {}", s.message))
                    .unwrap_or_default()
            ));
        }
        lines.extend(gate_line(c, &st));
        if let Some(msg) = st.message.filter(|m| !m.is_empty()) {
            lines.push(format!("  {msg}"));
        }
        details.push(lines);
    }
    let skip = usize::from(!namespaces);
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .skip(skip)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i > 0 {
            for d in &details[i - 1] {
                out.push_str(d.trim_end());
                out.push('\n');
            }
        }
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (client, ns) = args.target.connect().await?;
        let api: Api<Canary> = match args.all_namespaces {
            true => Api::all(client),
            false => Api::namespaced(client, &ns),
        };
        if !args.watch {
            let list = match &args.name {
                Some(n) => match api.get_opt(n).await? {
                    Some(c) => vec![c],
                    None => {
                        eprintln!(
                            "serin: Canary {ns}/{n} not found (check the name and -n NAMESPACE)"
                        );
                        return Ok(ExitCode::from(1));
                    }
                },
                None => {
                    let mut l = api.list(&ListParams::default()).await?.items;
                    l.sort_by_key(|c| (c.namespace(), c.name_any()));
                    l
                }
            };
            print!("{}", render(&list, args.all_namespaces));
            return Ok(ExitCode::SUCCESS);
        }
        watch(api, args.name, args.all_namespaces).await
    })
}

/// Redraws on every watch event: in place on a terminal, one table after another otherwise
/// (so `serin status -w | tee log` keeps the history).
async fn watch(
    api: Api<Canary>,
    name: Option<String>,
    namespaces: bool,
) -> anyhow::Result<ExitCode> {
    let mut config = watcher::Config::default();
    if let Some(n) = &name {
        config = config.fields(&format!("metadata.name={n}"));
    }
    let tty = std::io::stdout().is_terminal();
    let mut seen: BTreeMap<(Option<String>, String), Canary> = BTreeMap::new();
    let mut ready = false;
    let mut stream = watcher(api, config).boxed();
    let mut last = String::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                eprintln!("serin: watch: {e} (retrying)");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        match event {
            watcher::Event::Init => seen.clear(),
            watcher::Event::InitApply(c) => {
                seen.insert((c.namespace(), c.name_any()), c);
            }
            watcher::Event::InitDone => ready = true,
            watcher::Event::Apply(c) => {
                seen.insert((c.namespace(), c.name_any()), c);
            }
            watcher::Event::Delete(c) => {
                seen.remove(&(c.namespace(), c.name_any()));
            }
        }
        if !ready {
            continue;
        }
        let list: Vec<Canary> = seen
            .values()
            .filter(|c| name.as_ref().is_none_or(|n| &c.name_any() == n))
            .cloned()
            .collect();
        let table = render(&list, namespaces);
        if table == last {
            continue;
        }
        let mut out = std::io::stdout().lock();
        if tty {
            write!(out, "\x1b[H\x1b[2J")?;
        } else if !last.is_empty() {
            writeln!(out)?;
        }
        write!(out, "{table}")?;
        out.flush()?;
        last = table;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(0.0008), "0.0008");
        assert_eq!(number(14.2), "14.2");
        assert_eq!(number(99.0), "99");
        assert_eq!(number(99.87654321), "99.88");
        assert_eq!(number(0.123456789), "0.123457");
    }

    #[test]
    fn bar() {
        assert_eq!(weight_bar(0), "[----------]   0%");
        assert_eq!(weight_bar(30), "[###-------]  30%");
        assert_eq!(weight_bar(100), "[##########] 100%");
        assert_eq!(weight_bar(250), "[##########] 100%");
    }

    #[test]
    fn table_has_metrics_and_ranges() {
        let c: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "service": {"port": 80},
                     "analysis": {"threshold": 5, "metrics": [
                        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                        {"name": "latency", "thresholdRange": {"max": 500}}]}},
            "status": {"phase": "Progressing", "canaryWeight": 20, "failedChecks": 1,
                       "metrics": [{"name": "request-success-rate", "outcome": "Pass", "value": 99.5, "message": ""}]}
        }))
        .unwrap();
        let t = render(std::slice::from_ref(&c), false);
        assert!(!t.contains("NAMESPACE") && !t.contains("shop"), "{t}");
        let all = render(&[c], true);
        assert!(
            all.starts_with("NAMESPACE  NAME") && all.contains("shop"),
            "{all}"
        );
        assert!(t.contains("Progressing"), "{t}");
        assert!(t.contains("[##--------]  20%"), "{t}");
        assert!(t.contains("1/5"), "{t}");
        assert!(t.contains("99.5") && t.contains("range [99, ·]"), "{t}");
        assert!(t.contains("latency") && t.contains("range [·, 500]"), "{t}");
        assert!(!t.contains("halted") && !t.contains("approved"), "{t}");
    }

    #[test]
    fn halted_and_approved_canaries_say_so() {
        let mut c: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "shop",
                         "annotations": {"serin.dev/gate": "halted"}},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "service": {"port": 80}},
            "status": {"phase": "Progressing", "canaryWeight": 20}
        }))
        .unwrap();
        let t = render(std::slice::from_ref(&c), false);
        assert!(
            t.contains("halted (serin.dev/gate=halted): `serin approve web` resumes"),
            "{t}"
        );
        c.metadata.annotations = None;
        c.status.as_mut().unwrap().approved_revision = Some("b9cec35a6d2d8ff9".into());
        let t = render(&[c], false);
        assert!(
            t.contains("gates approved for revision b9cec35a6d2d8ff9"),
            "{t}"
        );
    }
}
