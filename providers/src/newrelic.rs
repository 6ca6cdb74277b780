//! New Relic: NRQL through the Insights query API,
//! `GET {address}/v1/accounts/{account}/query?nrql=…` with `X-Query-Key`
//! (secret keys `newrelic_account_id`, `newrelic_query_key`).

use serde_json::Value;

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, parse_error, required};

pub const DEFAULT_ADDRESS: &str = "https://insights-api.newrelic.com";

#[derive(Clone, Debug)]
pub struct NewRelic {
    http: Http,
    account_id: String,
    query_key: String,
}

impl NewRelic {
    pub fn new(
        address: &str,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        Ok(NewRelic {
            http: Http::new("newrelic", address, headers, insecure)?,
            account_id: required(secret, "newrelic", "newrelic_account_id")?,
            query_key: required(secret, "newrelic", "newrelic_query_key")?,
        })
    }

    pub async fn query(&self, query: &str) -> Result<f64, QueryError> {
        let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut url = self
            .http
            .url(&format!("/v1/accounts/{}/query", self.account_id))?;
        url.query_pairs_mut().append_pair("nrql", &query);
        let req = self
            .http
            .client
            .get(url)
            .header("X-Query-Key", &self.query_key)
            .header("Accept", "application/json");
        let body = self.http.send("newrelic", req).await?;
        parse_answer(&body, &query)
    }
}

/// `{"results":[{"<function>": value}]}`: the one number of the first result.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let a: Value = serde_json::from_str(body).map_err(|e| parse_error("newrelic", body, e))?;
    if let Some(e) = a.get("error").and_then(Value::as_str) {
        return Err(QueryError::Error(format!(
            "newrelic query failed: {e}; query: {query}"
        )));
    }
    let first = a
        .get("results")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(Value::as_object)
        .ok_or_else(|| QueryError::NoData(format!("newrelic returned no results: {query}")))?;
    let value = first
        .values()
        .next()
        .ok_or_else(|| QueryError::NoData(format!("newrelic result is empty: {query}")))?;
    match value {
        Value::Null => Err(QueryError::NoData(format!(
            "newrelic result is null: {query}"
        ))),
        Value::Number(n) => finite("newrelic", query, n.as_f64().unwrap_or(f64::NAN)),
        other => Err(QueryError::Error(format!(
            "newrelic result {other} is not a number: select one aggregate (e.g. percentage(count(*), WHERE error IS true))"
        ))),
    }
}
