//! Canary weights: Flagger's `nextStepWeight` with stepWeight or stepWeights.

use serin_api::CanarySpec;

/// How much to add to the canary weight from `current`: `stepWeight` when set; else the
/// distance to the next entry of `stepWeights` (from 0: the first entry; from a weight not in
/// the list: up to 100). Never more than `100 - current`.
pub fn next_step(spec: &CanarySpec, current: u32) -> u32 {
    let Some(a) = spec.analysis() else { return 0 };
    let room = 100u32.saturating_sub(current);
    if let Some(step) = a.step_weight.filter(|s| *s > 0) {
        return (step as u32).min(room);
    }
    let steps: Vec<u32> = a
        .step_weights
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|w| (*w).clamp(0, 100) as u32)
        .collect();
    if steps.is_empty() {
        return 0;
    }
    if current == 0 {
        return steps[0].min(room);
    }
    for pair in steps.windows(2) {
        if pair[0] == current {
            return pair[1].saturating_sub(current).min(room);
        }
    }
    room
}

#[cfg(test)]
mod tests {
    use super::*;
    use serin_api::canary::CanaryAnalysis;

    fn spec(step: Option<i32>, steps: Option<Vec<i32>>) -> CanarySpec {
        CanarySpec {
            analysis: Some(CanaryAnalysis {
                step_weight: step,
                step_weights: steps,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn step_weight_is_clamped_to_100() {
        let s = spec(Some(30), None);
        assert_eq!(next_step(&s, 0), 30);
        assert_eq!(next_step(&s, 90), 10);
    }

    #[test]
    fn step_weights_follow_the_list() {
        let s = spec(None, Some(vec![1, 2, 10, 80]));
        let mut w = 0;
        let mut seen = vec![];
        while w < s.max_weight() {
            w += next_step(&s, w);
            seen.push(w);
        }
        assert_eq!(seen, vec![1, 2, 10, 80]);
        // A weight not in the list jumps to 100.
        assert_eq!(next_step(&s, 5), 95);
        // An overflowing list is clamped.
        let s = spec(None, Some(vec![50, 200]));
        assert_eq!(next_step(&s, 50), 50);
    }
}
