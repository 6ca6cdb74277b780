//! Test support for serin: an in-memory Kubernetes API server (`apiserver`), a real Prometheus
//! harness (`prometheus`) and the small helpers every integration test needs (`support`).

#![forbid(unsafe_code)]

pub mod apiserver;
pub mod prometheus;
pub mod support;

pub use apiserver::{ApiServer, Options, RequestRecord, kubeconfig, write_kubeconfig};
