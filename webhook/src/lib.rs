//! serin's admission server. `/mutate` keeps the hold invariant on canary-managed Deployments,
//! DaemonSets and StatefulSets (DESIGN.md, "hold, don't clone"); `/validate` checks Canary, MetricTemplate and AlertProvider
//! with the `api` validation and refuses a second Canary on one workload. Served over TLS with a
//! certificate that is reloaded when its files change, or made at start (`--self-signed`), within
//! [`Limits`] on connections, time and body size.

#![forbid(unsafe_code)]

pub mod admit;
pub mod cluster;
pub mod hold;
pub mod index;
pub mod limits;
pub mod metrics;
pub mod review;
pub mod selfsigned;
pub mod serve;
pub mod server;
pub mod tls;

pub use index::{CanaryIndex, KubeCanaryIndex, MemoryCanaryIndex};
pub use limits::{Limits, MAX_BODY_BYTES};
pub use serve::serve_tls;
pub use server::{AppState, router};
pub use tls::{ReloadingCert, TlsError};
