//! The judges' evidence in `status.judge`: every shell (controller, local mode, `serin
//! simulate`) builds the tick's [`JudgeComparator`] from the status with [`comparator`] and
//! writes the judges' states back with [`save`], so the evidence survives a restart and a
//! replayed tick, and never leaks into another run.

use std::collections::BTreeMap;

use serin_api::common::FreeForm;
use serin_api::judge::JudgeRecord;
use serin_api::{CanarySpec, CanaryStatus};

use super::comparator::JudgeComparator;
use super::sequential::JudgeState;

/// The run the evidence belongs to: the revision under analysis, and the retry request that
/// restarted it (a retried revision is a new run with a fresh false-rollback budget).
pub fn run_key(revision: &str, retry: Option<&str>) -> String {
    match retry {
        Some(r) if !r.is_empty() => format!("{revision}/{r}"),
        _ => revision.to_string(),
    }
}

/// The comparator for one tick: resumes the states saved for `run`; another run's (or none)
/// starts afresh. A state that no longer decodes (written by an incompatible serin) starts that
/// metric's judge afresh rather than stopping the analysis.
pub fn comparator(spec: &CanarySpec, status: &CanaryStatus, run: &str) -> JudgeComparator {
    let states: BTreeMap<String, JudgeState> = match &status.judge {
        Some(record) if record.run == run => record
            .states
            .iter()
            .filter_map(|(name, state)| {
                serde_json::from_value(serde_json::Value::Object(state.0.clone()))
                    .ok()
                    .map(|s| (name.clone(), s))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    JudgeComparator::resume(spec, states)
}

/// Writes the judges' states after a tick into `status` (the engine's output status): the new
/// evidence when a judge looked, else the record as it was if it belongs to `run`, else none.
pub fn save(comparator: &JudgeComparator, run: &str, status: &mut CanaryStatus) {
    if comparator.looked() {
        let states = comparator
            .states()
            .into_iter()
            .filter_map(|(name, state)| match serde_json::to_value(state) {
                Ok(serde_json::Value::Object(map)) => Some((name, FreeForm(map))),
                _ => None,
            })
            .collect();
        status.judge = Some(JudgeRecord {
            run: run.to_string(),
            states,
        });
    } else if status.judge.as_ref().is_some_and(|r| r.run != run) {
        status.judge = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Comparator, Sample};
    use serin_api::canary::{CanaryAnalysis, CanaryMetric};
    use serin_api::judge::JudgeSpec;

    fn spec() -> CanarySpec {
        CanarySpec {
            analysis: Some(CanaryAnalysis {
                step_weight: Some(10),
                max_weight: Some(50),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn metric() -> CanaryMetric {
        CanaryMetric {
            name: "request-success-rate".into(),
            judge: Some(JudgeSpec::default()),
            ..Default::default()
        }
    }

    fn look(cmp: &JudgeComparator) {
        let s = |count, failures| Sample {
            count,
            failures,
            values: vec![],
        };
        cmp.compare(&metric(), &s(1000.0, 10.0), &s(9000.0, 90.0));
    }

    fn intervals(status: &CanaryStatus) -> u64 {
        let record = status.judge.as_ref().expect("a record");
        record.states["request-success-rate"].0["intervals"]
            .as_u64()
            .unwrap()
    }

    #[test]
    fn evidence_round_trips_through_json_and_stays_with_its_run() {
        let mut status = CanaryStatus::default();
        for n in 1..=3 {
            // Each tick: a fresh comparator from the status, a replay, a save, a JSON round trip.
            let cmp = comparator(&spec(), &status, "rev1");
            look(&cmp);
            look(&cmp);
            save(&cmp, "rev1", &mut status);
            let json = serde_json::to_string(&status).unwrap();
            status = serde_json::from_str(&json).unwrap();
            assert_eq!(intervals(&status), n, "one look per tick, replays included");
        }
        // A tick without a look keeps the record of its run…
        let cmp = comparator(&spec(), &status, "rev1");
        save(&cmp, "rev1", &mut status);
        assert_eq!(intervals(&status), 3);
        // …another run starts afresh and drops the old record.
        let cmp = comparator(&spec(), &status, "rev2");
        assert!(cmp.states().is_empty());
        save(&cmp, "rev2", &mut status);
        assert_eq!(status.judge, None);
        let cmp = comparator(&spec(), &status, &run_key("rev2", Some("r1")));
        look(&cmp);
        save(&cmp, &run_key("rev2", Some("r1")), &mut status);
        assert_eq!(status.judge.as_ref().unwrap().run, "rev2/r1");
        assert_eq!(intervals(&status), 1);
    }

    #[test]
    fn old_statuses_without_a_record_and_unreadable_states_start_afresh() {
        let old: CanaryStatus =
            serde_json::from_str(r#"{"phase": "Progressing", "canaryWeight": 20}"#).unwrap();
        assert_eq!(old.judge, None);
        assert!(comparator(&spec(), &old, "rev1").states().is_empty());
        let garbled: CanaryStatus = serde_json::from_value(serde_json::json!({
            "judge": {"run": "rev1", "states": {"request-success-rate": {"intervals": "many"}}}
        }))
        .unwrap();
        assert!(comparator(&spec(), &garbled, "rev1").states().is_empty());
    }
}
