//! Manual gates, as in Flagger's loadtester: in memory, per replica, closed by default and
//! never closed automatically (a pre-rollout hook to `/gate/close` re-arms one).

use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gate {
    /// `/gate/*`: promotion and traffic-increase approvals.
    Promotion,
    /// `/rollback/*`: a `rollback` webhook that answers 200 when the gate is open.
    Rollback,
}

#[derive(Default)]
pub struct Gates {
    open: Mutex<HashSet<(Gate, String)>>,
}

impl Gates {
    fn key(name: &str, namespace: &str) -> String {
        format!("{name}.{namespace}")
    }

    pub fn set(&self, gate: Gate, name: &str, namespace: &str, open: bool) {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let k = (gate, Self::key(name, namespace));
        if open {
            g.insert(k);
        } else {
            g.remove(&k);
        }
    }

    pub fn is_open(&self, gate: Gate, name: &str, namespace: &str) -> bool {
        let g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        g.contains(&(gate, Self::key(name, namespace)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_are_per_canary_and_kind() {
        let g = Gates::default();
        assert!(!g.is_open(Gate::Promotion, "web", "test"));
        g.set(Gate::Promotion, "web", "test", true);
        assert!(g.is_open(Gate::Promotion, "web", "test"));
        assert!(!g.is_open(Gate::Rollback, "web", "test"));
        assert!(!g.is_open(Gate::Promotion, "web", "prod"));
        g.set(Gate::Promotion, "web", "test", false);
        assert!(!g.is_open(Gate::Promotion, "web", "test"));
    }
}
