//! Test support for serin: an in-memory Kubernetes API server (`apiserver`).

pub mod apiserver;

pub use apiserver::{ApiServer, Options, RequestRecord, kubeconfig, write_kubeconfig};
