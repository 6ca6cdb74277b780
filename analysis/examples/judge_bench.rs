//! The decision benchmark of serin's judge against Flagger's fixed range (see `bench/judge.sh`).
//!
//! Model: a canary walks through weight steps (10..50 %), one 1-minute interval per step, R
//! requests/s in total arriving as a Poisson process, each failing with probability p on the
//! primary and ratio·p on a regressed canary (p on a healthy one). For each rule it prints the
//! false-rollback rate (healthy canaries rolled back), the detection rate (regressed canaries
//! rolled back), the inconclusive rate and the mean number of intervals to the decision.
//!
//! Usage: judge_bench [--rate R] [--p P] [--ratio X] [--steps 10,20,30,40,50] [--seed S]
//!                    [--releases N] [--alpha A] [--min-effect M] [--hold H] [--sweep]

use std::process::ExitCode;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serin_analysis::judge::JudgeConfig;
use serin_analysis::judge::sim::{self, Model, Outcome, Tally};

struct Options {
    rate: f64,
    p: f64,
    ratio: f64,
    steps: Vec<u32>,
    seed: u64,
    releases: u32,
    alpha: f64,
    min_effect: f64,
    hold: u32,
    sweep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate: 20.0,
            p: 0.01,
            ratio: 2.0,
            steps: vec![10, 20, 30, 40, 50],
            seed: 1,
            releases: 10_000,
            alpha: 0.01,
            min_effect: 1.5,
            hold: 10,
            sweep: false,
        }
    }
}

fn parse() -> Result<Options, String> {
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--sweep" {
            o.sweep = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |what: &str| -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{what} {value:?} is not a number"))
        };
        match flag.as_str() {
            "--rate" => o.rate = num("--rate")?,
            "--p" => o.p = num("--p")?,
            "--ratio" => o.ratio = num("--ratio")?,
            "--alpha" => o.alpha = num("--alpha")?,
            "--min-effect" => o.min_effect = num("--min-effect")?,
            "--seed" => {
                o.seed = value
                    .parse()
                    .map_err(|_| format!("--seed {value:?}: give a whole number"))?
            }
            "--releases" => {
                o.releases =
                    value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--releases {value:?}: give a positive whole number")
                    })?
            }
            "--hold" => {
                o.hold = value
                    .parse()
                    .map_err(|_| format!("--hold {value:?}: give a whole number"))?
            }
            "--steps" => {
                o.steps = value
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|&w| (1..=100).contains(&w))
                    })
                    .collect::<Option<Vec<_>>>()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        format!("--steps {value:?}: give weights in percent, e.g. 10,20,30,40,50")
                    })?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if o.rate <= 0.0 {
        return Err("--rate must be above 0 (requests per second)".into());
    }
    if !(o.p > 0.0 && o.p * o.ratio.max(1.0) <= 1.0) {
        return Err("--p must be in (0, 1] and p·ratio at most 1".into());
    }
    if o.ratio < 1.0 {
        return Err("--ratio must be at least 1 (the regressed canary's failure ratio)".into());
    }
    Ok(o)
}

/// One rule: a name and a way to run one release on a model.
type Rule<'a> = (
    String,
    Box<dyn Fn(&Model, &mut dyn FnMut() -> f64) -> Outcome + 'a>,
);

fn rules(o: &Options) -> Result<Vec<Rule<'static>>, String> {
    let judge = |hold: u32| -> Result<JudgeConfig, String> {
        Ok(
            JudgeConfig::new(o.alpha, o.min_effect, o.steps.len() as u32)
                .map_err(|e| e.to_string())?
                .with_hold(hold, false),
        )
    };
    let j0 = judge(0)?;
    let jh = judge(o.hold)?;
    let alpha = o.alpha;
    let mut out: Vec<Rule<'static>> = Vec::new();
    for (max, threshold) in [(1.0, 3u32), (2.0, 3), (5.0, 1)] {
        out.push((
            format!("flagger max {max}% threshold {threshold}"),
            Box::new(move |m, u| sim::flagger(m, max, threshold, &mut &mut *u)),
        ));
    }
    out.push((
        format!("serin judge α={alpha} minEffect {} hold 0", o.min_effect),
        Box::new(move |m, u| sim::judge(m, &j0, &mut &mut *u)),
    ));
    out.push((
        format!(
            "serin judge α={alpha} minEffect {} hold {}",
            o.min_effect, o.hold
        ),
        Box::new(move |m, u| sim::judge(m, &jh, &mut &mut *u)),
    ));
    let me = o.min_effect;
    out.push((
        format!("mixture SPRT (Ville) α={alpha} from {me}x"),
        Box::new(move |m, u| sim::msprt(m, alpha, me, &mut &mut *u)),
    ));
    out.push((
        format!("best fixed test, 1-sided α={alpha}"),
        Box::new(move |m, u| sim::fixed_test(m, alpha, false, &mut &mut *u)),
    ));
    out.push((
        format!("best fixed test, 2-sided α={alpha}"),
        Box::new(move |m, u| sim::fixed_test(m, alpha, true, &mut &mut *u)),
    ));
    Ok(out)
}

fn run(model: &Model, rule: &Rule<'_>, releases: u32, seed: u64) -> Tally {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut u = move || rng.random::<f64>();
    let mut t = Tally::default();
    for _ in 0..releases {
        t.add((rule.1)(model, &mut u));
    }
    t
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn table(o: &Options, rate: f64, p: f64) -> Result<(), String> {
    let healthy = Model {
        rate,
        p,
        ratio: 1.0,
        steps: o.steps.clone(),
        interval_s: 60.0,
    };
    let regressed = Model {
        ratio: o.ratio,
        ..healthy.clone()
    };
    println!(
        "\n{rate} req/s, p = {}, regressed canary {}x, steps {:?}, {} releases each, seed {}",
        pct(p),
        o.ratio,
        o.steps,
        o.releases,
        o.seed
    );
    println!(
        "{:<42} {:>10} {:>8} {:>7} | {:>9} {:>8} {:>7}",
        "rule", "false-rb", "inconc", "ivals", "detected", "inconc", "ivals"
    );
    for (i, rule) in rules(o)?.iter().enumerate() {
        let seed = o.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let h = run(&healthy, rule, o.releases, seed);
        let r = run(&regressed, rule, o.releases, seed ^ 0x5eed);
        println!(
            "{:<42} {:>10} {:>8} {:>7.2} | {:>9} {:>8} {:>7.2}",
            rule.0,
            pct(h.rollback_rate()),
            pct(h.inconclusive_rate()),
            h.mean_intervals(),
            pct(r.rollback_rate()),
            pct(r.inconclusive_rate()),
            r.mean_intervals()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("judge_bench: {e}");
            }
            eprintln!(
                "usage: judge_bench [--rate R] [--p P] [--ratio X] [--steps 10,20,30,40,50] [--seed S] [--releases N] [--alpha A] [--min-effect M] [--hold H] [--sweep]"
            );
            return ExitCode::from(2);
        }
    };
    let se = |x: f64| (x * (1.0 - x) / f64::from(o.releases)).sqrt();
    println!(
        "Monte-Carlo standard error with {} releases: ±{} at 1%, ±{} at 50%",
        o.releases,
        pct(se(0.01)),
        pct(se(0.5))
    );
    println!("false-rb = healthy canaries rolled back; detected = regressed canaries rolled back;");
    println!("inconc = inconclusive (paused for a person); ivals = mean intervals to the decision");
    let cells: Vec<(f64, f64)> = if o.sweep {
        [20.0, 50.0]
            .iter()
            .flat_map(|&r| [0.001, 0.005, 0.01, 0.02, 0.05].map(|p| (r, p)))
            .collect()
    } else {
        vec![(o.rate, o.p)]
    };
    for (rate, p) in cells {
        if let Err(e) = table(&o, rate, p) {
            eprintln!("judge_bench: {e}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
