//! A workload read from JSON text for the hold decision (the webhook's `request.object`): only
//! what [`Facts`] holds, borrowed from the text, plus the pod template, read once and hashed
//! only for a labelled workload. Nothing else (`status`, `managedFields`, the rest of the spec) is
//! built; it is read through, so malformed text is still an error. Reads as
//! [`Facts::of`](super::Facts::of) reads the same object as a `Value` (a property test holds the
//! two together): a member of another shape is absent, and of duplicate keys the last one counts.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::Facts;
use crate::hash::{Template, template_hash};
use crate::json_text::{Text, read_as_default};
use crate::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION, UPDATE_STRATEGY_ANNOTATION};

/// What the hold decision reads of a workload given as JSON text.
#[derive(Debug, Default)]
pub struct WorkloadView<'a> {
    /// `kind`, when it is a string.
    pub kind: Option<Cow<'a, str>>,
    /// `metadata.name` and `metadata.namespace`, when they are strings.
    pub name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    canary: Option<Cow<'a, str>>,
    stable_hash: Option<Cow<'a, str>>,
    saved_strategy: Option<Cow<'a, str>>,
    paused: bool,
    strategy: Option<Value>,
    template: Option<Template<'a>>,
}

impl<'a> WorkloadView<'a> {
    /// The facts the decision reads.
    pub fn facts(&self) -> Facts<'_> {
        Facts {
            canary: self.canary.as_deref(),
            stable_hash: self.stable_hash.as_deref(),
            saved_strategy: self.saved_strategy.as_deref(),
            paused: self.paused,
            strategy: self.strategy.as_ref(),
        }
    }

    /// The hash of `spec.template` (of `null` when there is none).
    pub fn revision(&self) -> String {
        match &self.template {
            Some(template) => template.hash(),
            None => template_hash(&Value::Null),
        }
    }
}

impl<'de> Deserialize<'de> for WorkloadView<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WorkloadVisitor)
    }
}

struct WorkloadVisitor;

impl<'de> Visitor<'de> for WorkloadVisitor {
    type Value = WorkloadView<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a workload object")
    }
    read_as_default!(bool, numbers, unit, seq, str);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut view = WorkloadView::default();
        while let Some(Text(key)) = map.next_key()? {
            match key.as_ref() {
                "kind" => view.kind = map.next_value::<OptStr>()?.0,
                "metadata" => {
                    let m: Metadata = map.next_value()?;
                    view.name = m.name;
                    view.namespace = m.namespace;
                    [view.canary] = m.labels.0;
                    [view.stable_hash, view.saved_strategy] = m.annotations.0;
                }
                "spec" => {
                    let s: Spec = map.next_value()?;
                    view.paused = s.paused.0;
                    view.strategy = s.strategy;
                    view.template = s.template;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(view)
    }
}

/// A string, or `None` for any other JSON value.
#[derive(Default)]
struct OptStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            read_as_default!(bool, numbers, unit, seq, map);
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<OptStr<'de>, E> {
                Ok(OptStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<OptStr<'de>, E> {
                Ok(OptStr(Some(Cow::Owned(v.to_owned()))))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `true`, or false for any other JSON value.
#[derive(Default)]
struct IsTrue(bool);

impl<'de> Deserialize<'de> for IsTrue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsTrue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            read_as_default!(numbers, unit, seq, str, map);
            fn visit_bool<E>(self, v: bool) -> Result<IsTrue, E> {
                Ok(IsTrue(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The members of `metadata` the decision reads.
#[derive(Default)]
struct Metadata<'a> {
    name: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    labels: Picked<'a, 1>,
    annotations: Picked<'a, 2>,
}

impl<'de> Deserialize<'de> for Metadata<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            read_as_default!(bool, numbers, unit, seq, str);
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata<'de>, A::Error> {
                let mut m = Metadata::default();
                while let Some(Text(key)) = map.next_key()? {
                    match key.as_ref() {
                        "name" => m.name = map.next_value::<OptStr>()?.0,
                        "namespace" => m.namespace = map.next_value::<OptStr>()?.0,
                        "labels" => m.labels = map.next_value_seed(Pick([CANARY_LABEL]))?,
                        "annotations" => {
                            m.annotations = map.next_value_seed(Pick([
                                STABLE_HASH_ANNOTATION,
                                UPDATE_STRATEGY_ANNOTATION,
                            ]))?
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The string values of some keys of a map (labels, annotations).
struct Picked<'a, const N: usize>([Option<Cow<'a, str>>; N]);

impl<const N: usize> Default for Picked<'_, N> {
    fn default() -> Self {
        Picked(std::array::from_fn(|_| None))
    }
}

/// Reads a map into [`Picked`] for these keys.
struct Pick<const N: usize>([&'static str; N]);

impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for Pick<N> {
    type Value = Picked<'de, N>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Pick<N> {
    type Value = Picked<'de, N>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    read_as_default!(bool, numbers, unit, seq, str);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut picked = Picked::default();
        while let Some(Text(key)) = map.next_key()? {
            match self.0.iter().position(|k| *k == key) {
                Some(i) => picked.0[i] = map.next_value::<OptStr>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(picked)
    }
}

/// The members of `spec` the decision reads.
#[derive(Default)]
struct Spec<'a> {
    paused: IsTrue,
    strategy: Option<Value>,
    template: Option<Template<'a>>,
}

impl<'de> Deserialize<'de> for Spec<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Spec<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            read_as_default!(bool, numbers, unit, seq, str);
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spec<'de>, A::Error> {
                let mut s = Spec::default();
                while let Some(Text(key)) = map.next_key()? {
                    match key.as_ref() {
                        "paused" => s.paused = map.next_value()?,
                        "updateStrategy" => s.strategy = Some(map.next_value()?),
                        "template" => s.template = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(s)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests;
