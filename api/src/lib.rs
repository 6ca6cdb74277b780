//! The `flagger.app/v1beta1` API as serin speaks it: types with every field of Flagger's CRDs,
//! Go-style durations, Flagger's defaults, semantic validation with field paths, the pod-template
//! hash of the hold model, and CRD generation.

#![forbid(unsafe_code)]

pub mod alert;
pub mod canary;
pub mod common;
pub mod crd;
pub mod duration;
pub mod hash;
pub mod hold;
pub mod judge;
pub mod labels;
pub mod metric;
pub mod provider;
pub mod status;
pub mod template;
pub mod validate;

pub use alert::{AlertProvider, AlertProviderSpec};
pub use canary::{Canary, CanarySpec, Strategy, WebhookType};
pub use duration::GoDuration;
pub use metric::{MetricTemplate, MetricTemplateSpec};
pub use status::{CanaryStatus, Phase};
