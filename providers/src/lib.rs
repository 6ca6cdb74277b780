//! What serin calls out to, shared by the controller and local mode: metric providers,
//! the builtin metrics' queries, and Canary webhooks.
//!
//! A query has three kinds of result, kept apart because the engine treats them differently
//! (DESIGN.md, "Bad input and failure"): a value, **no data** (the query ran and matched
//! nothing: usually no traffic), or an **error** (the provider could not be reached, refused the
//! query, or answered something that is not one number).

#![forbid(unsafe_code)]

pub mod alerts;
pub mod body;
pub mod builtin;
pub mod cloudwatch;
pub mod datadog;
pub mod dynatrace;
pub mod graphite;
pub mod influxdb;
pub mod loadtester;
pub mod metric;
pub mod newrelic;
pub mod prometheus;
pub mod splunk;
pub mod webhook;

/// Why a query produced no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query ran and returned no samples (or NaN).
    #[error("no values found: {0}")]
    NoData(String),
    /// The provider could not be reached or answered with an error.
    #[error("{0}")]
    Error(String),
}

impl QueryError {
    pub fn is_no_data(&self) -> bool {
        matches!(self, QueryError::NoData(_))
    }
}
