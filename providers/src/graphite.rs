//! Graphite: `GET {address}/render?target=…&format=json`, basic auth from optional secret keys
//! `username`/`password`. The query is a target, or a query string starting with `target=`
//! (to add `from=` and other render parameters).

use serde::Deserialize;

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, parse_error, secret_text};

#[derive(Clone, Debug)]
pub struct Graphite {
    http: Http,
    basic: Option<(String, String)>,
}

#[derive(Deserialize)]
struct Series {
    target: String,
    datapoints: Vec<(Option<f64>, Option<f64>)>,
}

impl Graphite {
    pub fn new(
        address: &str,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        let basic = secret_text(secret, "username")
            .map(|u| (u, secret_text(secret, "password").unwrap_or_default()));
        Ok(Graphite {
            http: Http::new("graphite", address, headers, insecure)?,
            basic,
        })
    }

    pub async fn query(&self, query: &str) -> Result<f64, QueryError> {
        let query = query.trim();
        let mut url = self.http.url("/render")?;
        if query.starts_with("target=") {
            url.set_query(Some(query));
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != "format")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        } else {
            url.query_pairs_mut().append_pair("target", query);
        }
        url.query_pairs_mut().append_pair("format", "json");
        let mut req = self.http.client.get(url);
        if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        let body = self.http.send("graphite", req).await?;
        parse_answer(&body, query)
    }
}

/// The last non-null datapoint of the one series.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let series: Vec<Series> =
        serde_json::from_str(body).map_err(|e| parse_error("graphite", body, e))?;
    let s = match series.as_slice() {
        [] => {
            return Err(QueryError::NoData(format!(
                "graphite returned no series: {query}"
            )));
        }
        [one] => one,
        many => {
            let names: Vec<&str> = many.iter().take(5).map(|s| s.target.as_str()).collect();
            return Err(QueryError::Error(format!(
                "graphite returned {} series, expected one: {}; combine them (e.g. sumSeries(...))",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let v = s
        .datapoints
        .iter()
        .rev()
        .find_map(|(v, _)| *v)
        .ok_or_else(|| {
            QueryError::NoData(format!("graphite series {} has only nulls", s.target))
        })?;
    finite("graphite", query, v)
}
