//! InfluxDB 2: a Flux query POSTed to `{address}/api/v2/query?org=…` with
//! `Authorization: Token …` (secret keys `token`, `org`); the answer is annotated CSV.

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, required};

#[derive(Clone, Debug)]
pub struct InfluxDb {
    http: Http,
    token: String,
    org: String,
}

impl InfluxDb {
    pub fn new(
        address: &str,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        Ok(InfluxDb {
            http: Http::new("influxdb", address, headers, insecure)?,
            token: required(secret, "influxdb", "token")?,
            org: required(secret, "influxdb", "org")?,
        })
    }

    pub async fn query(&self, query: &str) -> Result<f64, QueryError> {
        let mut url = self.http.url("/api/v2/query")?;
        url.query_pairs_mut().append_pair("org", &self.org);
        let req = self
            .http
            .client
            .post(url)
            .header("Authorization", format!("Token {}", self.token))
            .header("Content-Type", "application/vnd.flux")
            .header("Accept", "application/csv")
            .body(query.to_string());
        let body = self.http.send("influxdb", req).await?;
        parse_answer(&body, query)
    }
}

/// The `_value` of the first record. Annotation rows (`#datatype`, …) are skipped; a table
/// header row names the columns. Flux values do not contain commas for numbers, so a plain
/// split is enough for the column we read.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let mut column: Option<usize> = None;
    for line in body.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() || line.starts_with('#') {
            if line.is_empty() {
                column = None;
            }
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        match column {
            None => {
                column = cells.iter().position(|c| *c == "_value");
                if column.is_none() {
                    if cells.contains(&"error") {
                        return Err(QueryError::Error(format!(
                            "influxdb query failed: {}",
                            body.lines().nth(1).unwrap_or(line)
                        )));
                    }
                    return Err(QueryError::Error(format!(
                        "influxdb answer has no _value column (header {line:?}): end the Flux query with a table that has _value"
                    )));
                }
            }
            Some(i) => {
                let cell = cells.get(i).copied().unwrap_or("");
                if cell.is_empty() {
                    return Err(QueryError::NoData(format!(
                        "influxdb _value is empty: {query}"
                    )));
                }
                let v: f64 = cell.parse().map_err(|_| {
                    QueryError::Error(format!("influxdb _value {cell:?} is not a number"))
                })?;
                return finite("influxdb", query, v);
            }
        }
    }
    Err(QueryError::NoData(format!(
        "influxdb returned no records: {query}"
    )))
}
