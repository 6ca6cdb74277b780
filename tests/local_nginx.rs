//! `serin run --router nginx`: a real nginx reloaded with new upstream weights at each step,
//! the builtin metrics read from its access log.

mod local_support;

use std::time::Duration;

use local_support::*;

#[test]
fn nginx_healthy_canary_is_promoted() {
    require("nginx", "apt-get install nginx");
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "2s", 2, 20, 60);
    let args = run_args(&canary, "nginx", 0.0, "hey -c 2 -q 50");
    let out = run(&args, Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.done()["result"], "promoted");
    assert_eq!(out.failed_check_events(), 0, "{}", out.stdout);
    out.assert_shares(100);
    // nginx stopped with its workers: nothing serves the router's address any more.
    let listen = &args[args.iter().position(|a| a == "--listen").unwrap() + 1];
    assert!(
        std::net::TcpStream::connect(listen).is_err(),
        "an nginx process outlived serin run on {listen}"
    );
}

#[test]
fn nginx_canary_failing_a_fifth_of_requests_is_rolled_back() {
    require("nginx", "apt-get install nginx");
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "2s", 2, 20, 60);
    let out = run(
        &run_args(&canary, "nginx", 0.2, "hey -c 2 -q 50"),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(out.done()["result"], "rolledBack");
    assert_eq!(out.max_failed_checks(), 2, "{}", out.stdout);
    assert_eq!(out.failing_ticks(), 2, "{}", out.stdout);
    let sr = out
        .of("tick")
        .into_iter()
        .filter_map(|t| t["metrics"][0]["value"].as_f64())
        .next_back()
        .unwrap();
    assert!((sr - 80.0).abs() < 2.0, "success rate {sr}");
    out.assert_shares(100);
}
