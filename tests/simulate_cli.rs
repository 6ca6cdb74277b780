//! `serin simulate` end to end: the seed Canaries on the virtual clock, exit codes, JSON
//! output, and clear errors for bad flags.

use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/seeds/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serin"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("serin runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn web_seed_is_promoted_through_five_steps() {
    let o = simulate(&["-f", &fixture("web-canary.yaml")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for w in [10, 20, 30, 40, 50] {
        assert!(
            out.contains(&format!("Advance prod/web canary weight {w}\n")),
            "{out}"
        );
    }
    assert!(out.contains(
        "note: error-rate is not scripted at every tick; unscripted ticks use the passing value 0.5"
    ));
    assert!(out.contains("     8m  Succeeded"), "{out}");
    assert!(
        out.ends_with("verdict: promoted after 8m (exit 0)\n"),
        "{out}"
    );
}

#[test]
fn web_seed_rolls_back_after_three_failed_checks() {
    let o = simulate(&[
        "-f",
        &fixture("web-canary.yaml"),
        "--metric",
        "error-rate=0.5",
        "--metric",
        "error-rate=4.2@3m",
        "--canary-ready-after",
        "30s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("     4m  Progressing          20     2/3  Warning: Halt advancement of prod/web: error-rate 4.2 > max 1 (failed checks 2/3)"), "{out}");
    assert!(out.contains("     5m  Failed                0     3/3  Warning: Rolling back prod/web: failed checks threshold reached 3: error-rate 4.2 > max 1"), "{out}");
    assert!(
        out.ends_with("verdict: rolled back after 5m with 3 failed checks (exit 1)\n"),
        "{out}"
    );
}

#[test]
fn podinfo_seed_with_the_metric_template_file_and_json_output() {
    let o = simulate(&[
        "-f",
        &fixture("podinfo-traefik-canary.yaml"),
        "--no-data",
        "request-duration@30s-50s",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "promoted");
    assert_eq!(v["status"]["phase"], "Succeeded");
    // Two no-data checks counted (Flagger's default) but below threshold 10.
    let failed: Vec<u64> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["failedChecks"].as_u64().unwrap())
        .collect();
    assert_eq!(failed.iter().max(), Some(&2));
}

#[test]
fn no_verdict_within_the_duration_exits_3() {
    let o = simulate(&["-f", &fixture("web-canary.yaml"), "--duration", "3m"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("verdict: none within 3m (exit 3)"));
}

#[test]
fn bad_flags_name_the_flag_and_the_fix() {
    let web = fixture("web-canary.yaml");
    let cases: [(&[&str], &str); 7] = [
        (
            &["--metric", "error-rate=abc"],
            "--metric error-rate=abc: value must be a number",
        ),
        (
            &["--metric", "errorrate=1"],
            "--metric errorrate=1: the Canary has no metric \"errorrate\" (metrics: error-rate, request-duration)",
        ),
        (
            &["--metric", "error-rate"],
            "--metric error-rate: expected NAME=VALUE[@FROM-TO]",
        ),
        (
            &["--metric", "error-rate=1@5m-2m"],
            "the window ends before it starts",
        ),
        (
            &["--no-data", "error-rate@soon"],
            "--no-data error-rate@soon: \"soon\" is not a duration",
        ),
        (
            &["--webhook", "load-test=slow"],
            "the only scripted result is `fail`",
        ),
        (
            &["--canary-ready-after", "30"],
            "--canary-ready-after 30: not a duration",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["-f", web.as_str()];
        all.extend_from_slice(args);
        let o = simulate(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
    let o = simulate(&["-f", "/nonexistent.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("-f /nonexistent.yaml: cannot read"));
}

#[test]
fn commands_are_scripted_on_the_virtual_clock() {
    let o = simulate(&[
        "-f",
        &fixture("web-canary.yaml"),
        "--halt",
        "2m-4m",
        "--abort-at",
        "6m",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("     3m  Progressing          10     0/3  Warning: Halt prod/web advancement: serin.dev/gate=halted at canary weight 10"), "{out}");
    assert!(out.contains("     4m  Progressing          20"), "{out}");
    assert!(
        out.contains("     6m  Failed                0     0/3  Warning: Rolling back prod/web: aborted by serin.dev/abort=360000ms@candidate"),
        "{out}"
    );
    let o = simulate(&["-f", &fixture("web-canary.yaml"), "--promote-at", "2m30s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("verdict: promoted after 5m (exit 0)"));
    let o = simulate(&["-f", &fixture("web-canary.yaml"), "--halt", "2m"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--halt 2m: give the end too"),
        "{}",
        stderr(&o)
    );
}
