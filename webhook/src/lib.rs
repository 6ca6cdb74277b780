//! serin's admission server. `/mutate` keeps the hold invariant on canary-managed Deployments,
//! DaemonSets and StatefulSets (DESIGN.md, "hold, don't clone"); `/validate` checks Canary, MetricTemplate and AlertProvider
//! with the `api` validation and refuses a second Canary on one workload. Served over TLS with a
//! certificate that is reloaded when its files change, or made at start (`--self-signed`).

pub mod admit;
pub mod cluster;
pub mod hold;
pub mod index;
pub mod metrics;
pub mod review;
pub mod selfsigned;
pub mod server;
pub mod tls;

pub use index::{CanaryIndex, KubeCanaryIndex, MemoryCanaryIndex};
pub use server::{AppState, MAX_BODY_BYTES, router, serve_tls};
pub use tls::{ReloadingCert, TlsError};
