//! Each metric provider against a local server answering its documented response shape.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serin_api::metric::MetricTemplateProvider;
use serin_providers::QueryError;
use serin_providers::metric::{MetricProvider, ProviderError, SecretData};
use support::Fake;

fn secret(pairs: &[(&str, &str)]) -> SecretData {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), format!("{v}\n").into_bytes()))
        .collect()
}

fn provider(type_: &str, address: &str, pairs: &[(&str, &str)]) -> MetricProvider {
    let p = MetricTemplateProvider {
        type_: type_.into(),
        address: Some(address.into()),
        region: Some("eu-west-1".into()),
        ..Default::default()
    };
    MetricProvider::new(&p, &secret(pairs), "http://unused:9090").unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

fn is_no_data(r: Result<f64, QueryError>) -> bool {
    matches!(r, Err(QueryError::NoData(_)))
}

fn error_text(r: Result<f64, QueryError>) -> String {
    match r {
        Err(QueryError::Error(m)) => m,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn datadog() {
    let fake = Fake::start().await;
    let dd = provider(
        "datadog",
        &fake.address,
        &[
            ("datadog_api_key", "api"),
            ("datadog_application_key", "app"),
        ],
    );
    fake.answer(
        200,
        r#"{"status":"ok","series":[{"pointlist":[[1700000000000,12.5],[1700000060000,99.0]]}]}"#,
    );
    assert_eq!(dd.query("avg:errors{app:web}", MINUTE).await, Ok(12.5));
    let seen = fake.last();
    assert_eq!(seen.path, "/api/v1/query");
    assert_eq!(seen.headers["dd-api-key"], "api");
    assert_eq!(seen.headers["dd-application-key"], "app");
    assert_eq!(seen.query["query"], "avg:errors{app:web}");
    let from: i64 = seen.query["from"].parse().unwrap();
    let to: i64 = seen.query["to"].parse().unwrap();
    assert_eq!(to - from, 600, "window is 10 × interval");

    fake.answer(200, r#"{"status":"ok","series":[]}"#);
    assert!(is_no_data(dd.query("q", MINUTE).await));
    fake.answer(403, r#"{"errors":["Forbidden"]}"#);
    assert!(error_text(dd.query("q", MINUTE).await).contains("Forbidden"));
}

#[tokio::test]
async fn datadog_needs_its_keys() {
    let p = MetricTemplateProvider {
        type_: "datadog".into(),
        ..Default::default()
    };
    let err = MetricProvider::new(&p, &secret(&[("datadog_api_key", "a")]), "").unwrap_err();
    assert_eq!(
        err,
        ProviderError::MissingSecret {
            provider: "datadog",
            key: "datadog_application_key"
        }
    );
    assert!(err.to_string().contains("datadog_application_key"));
}

#[tokio::test]
async fn newrelic() {
    let fake = Fake::start().await;
    let nr = provider(
        "newrelic",
        &fake.address,
        &[("newrelic_account_id", "42"), ("newrelic_query_key", "qk")],
    );
    fake.answer(200, r#"{"results":[{"percentage":1.25}],"metadata":{}}"#);
    let v = nr
        .query(
            "SELECT percentage(count(*), WHERE error IS true)\n FROM Transaction",
            MINUTE,
        )
        .await;
    assert_eq!(v, Ok(1.25));
    let seen = fake.last();
    assert_eq!(seen.path, "/v1/accounts/42/query");
    assert_eq!(seen.headers["x-query-key"], "qk");
    assert_eq!(
        seen.query["nrql"],
        "SELECT percentage(count(*), WHERE error IS true) FROM Transaction"
    );
    fake.answer(200, r#"{"results":[{"percentage":null}]}"#);
    assert!(is_no_data(nr.query("q", MINUTE).await));
    fake.answer(200, r#"{"results":[]}"#);
    assert!(is_no_data(nr.query("q", MINUTE).await));
    fake.answer(400, r#"{"error":"NRQL Syntax Error"}"#);
    assert!(error_text(nr.query("q", MINUTE).await).contains("NRQL Syntax Error"));
}

#[tokio::test]
async fn graphite() {
    let fake = Fake::start().await;
    let g = provider(
        "graphite",
        &fake.address,
        &[("username", "u"), ("password", "p")],
    );
    fake.answer(
        200,
        r#"[{"target":"errors","datapoints":[[1.0,100],[3.5,160],[null,220]]}]"#,
    );
    assert_eq!(g.query("sumSeries(app.*.errors)", MINUTE).await, Ok(3.5));
    let seen = fake.last();
    assert_eq!(seen.path, "/render");
    assert_eq!(seen.query["target"], "sumSeries(app.*.errors)");
    assert_eq!(seen.query["format"], "json");
    // base64("u:p")
    assert_eq!(seen.headers["authorization"], "Basic dTpw");

    g.query("target=errors&from=-5min", MINUTE).await.unwrap();
    let seen = fake.last();
    assert_eq!(seen.query["target"], "errors");
    assert_eq!(seen.query["from"], "-5min");

    fake.answer(200, r#"[{"target":"e","datapoints":[[null,1]]}]"#);
    assert!(is_no_data(g.query("e", MINUTE).await));
    fake.answer(200, "[]");
    assert!(is_no_data(g.query("e", MINUTE).await));
    fake.answer(
        200,
        r#"[{"target":"a","datapoints":[[1,1]]},{"target":"b","datapoints":[[1,1]]}]"#,
    );
    assert!(error_text(g.query("*", MINUTE).await).contains("a, b"));
}

#[tokio::test]
async fn graphite_without_credentials_sends_no_auth() {
    let fake = Fake::start().await;
    let g = provider("graphite", &fake.address, &[]);
    fake.answer(200, r#"[{"target":"e","datapoints":[[2,1]]}]"#);
    assert_eq!(g.query("e", MINUTE).await, Ok(2.0));
    assert!(!fake.last().headers.contains_key("authorization"));
}

#[tokio::test]
async fn influxdb() {
    let fake = Fake::start().await;
    let i = provider(
        "influxdb",
        &fake.address,
        &[("token", "tok"), ("org", "acme")],
    );
    let csv = "#datatype,string,long,dateTime:RFC3339,double\r\n#group,false,false,false,false\r\n#default,_result,,,\r\n,result,table,_time,_value\r\n,,0,2024-01-01T00:00:00Z,0.75\r\n\r\n";
    fake.answer(200, csv);
    let flux = "from(bucket: \"b\") |> range(start: -1m) |> mean()";
    assert_eq!(i.query(flux, MINUTE).await, Ok(0.75));
    let seen = fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/api/v2/query");
    assert_eq!(seen.query["org"], "acme");
    assert_eq!(seen.headers["authorization"], "Token tok");
    assert_eq!(seen.headers["content-type"], "application/vnd.flux");
    assert_eq!(seen.body, flux);

    fake.answer(200, "\r\n");
    assert!(is_no_data(i.query(flux, MINUTE).await));
    fake.answer(
        400,
        r#"{"code":"invalid","message":"compilation failed: bad"}"#,
    );
    assert!(error_text(i.query(flux, MINUTE).await).contains("compilation failed"));
}

#[tokio::test]
async fn dynatrace() {
    let fake = Fake::start().await;
    let d = provider("dynatrace", &fake.address, &[("dynatrace_token", "dt0c01")]);
    fake.answer(
        200,
        r#"{"totalCount":1,"resolution":"Inf","result":[{"metricId":"builtin:service.errors","data":[{"dimensions":[],"timestamps":[1,2],"values":[2.0,null]}]}]}"#,
    );
    assert_eq!(d.query("builtin:service.errors", MINUTE).await, Ok(2.0));
    let seen = fake.last();
    assert_eq!(seen.path, "/api/v2/metrics/query");
    assert_eq!(seen.headers["authorization"], "Api-Token dt0c01");
    assert_eq!(seen.query["metricSelector"], "builtin:service.errors");
    let from: i64 = seen.query["from"].parse().unwrap();
    let to: i64 = seen.query["to"].parse().unwrap();
    assert_eq!(to - from, 600_000);

    fake.answer(
        200,
        r#"{"totalCount":0,"result":[{"metricId":"m","data":[]}]}"#,
    );
    assert!(is_no_data(d.query("m", MINUTE).await));
    fake.answer(
        400,
        r#"{"error":{"code":400,"message":"The metric selector is invalid"}}"#,
    );
    assert!(error_text(d.query("m", MINUTE).await).contains("metric selector is invalid"));
}

#[tokio::test]
async fn splunk() {
    let fake = Fake::start().await;
    let s = provider("splunk", &fake.address, &[("sf_token_key", "sf")]);
    fake.answer(200, r#"{"data":{"AAAA":[[1,0.5],[2,0.25]]},"errors":[]}"#);
    assert_eq!(s.query("sf_metric:\"errors\"", MINUTE).await, Ok(0.25));
    let seen = fake.last();
    assert_eq!(seen.path, "/v1/timeserieswindow");
    assert_eq!(seen.headers["x-sf-token"], "sf");
    assert_eq!(seen.query["query"], "sf_metric:\"errors\"");
    fake.answer(200, r#"{"data":{},"errors":[]}"#);
    assert!(is_no_data(s.query("q", MINUTE).await));
    fake.answer(401, r#"{"message":"Unauthorized"}"#);
    assert!(error_text(s.query("q", MINUTE).await).contains("401"));
}

#[tokio::test]
async fn cloudwatch_signs_with_sigv4() {
    let fake = Fake::start().await;
    let c = provider(
        "cloudwatch",
        &fake.address,
        &[
            ("aws_access_key_id", "AKIDEXAMPLE"),
            ("aws_secret_access_key", "secret"),
        ],
    );
    fake.answer(
        200,
        r#"{"MetricDataResults":[{"Id":"e1","Label":"errors","StatusCode":"Complete","Timestamps":[1700000000],"Values":[4.0,3.0]}],"Messages":[]}"#,
    );
    let q = r#"[{"Id":"e1","Expression":"SUM(METRICS())","ReturnData":true}]"#;
    assert_eq!(c.query(q, MINUTE).await, Ok(4.0));
    let seen = fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.headers["x-amz-target"],
        "GraniteServiceVersion20100801.GetMetricData"
    );
    assert_eq!(seen.headers["content-type"], "application/x-amz-json-1.0");
    let auth = &seen.headers["authorization"];
    let date = &seen.headers["x-amz-date"];
    let re = regex_lite::Regex::new(
        r"^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(\d{8})/eu-west-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$",
    )
    .unwrap();
    let caps = re.captures(auth).unwrap_or_else(|| panic!("{auth}"));
    assert_eq!(&caps[1], &date[..8]);
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body["MetricDataQueries"][0]["Id"], "e1");
    assert_eq!(
        body["EndTime"].as_i64().unwrap() - body["StartTime"].as_i64().unwrap(),
        600
    );

    fake.answer(200, r#"{"MetricDataResults":[{"Id":"e1","Values":[]}]}"#);
    assert!(is_no_data(c.query(q, MINUTE).await));
    fake.answer(
        400,
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Invalid metric"}"#,
    );
    assert!(error_text(c.query(q, MINUTE).await).contains("Invalid metric"));
    assert!(error_text(c.query("not json", MINUTE).await).contains("JSON array"));
}

#[tokio::test]
async fn cloudwatch_needs_a_region() {
    let p = MetricTemplateProvider {
        type_: "cloudwatch".into(),
        ..Default::default()
    };
    let err = MetricProvider::new(&p, &BTreeMap::new(), "").unwrap_err();
    assert_eq!(err, ProviderError::MissingRegion);
}

#[tokio::test]
async fn loadtester_reads_the_metric_window() {
    let fake = Fake::start().await;
    let l = provider("loadtester", &fake.address, &[]);
    fake.answer(
        200,
        r#"{"canary":"test/web","window_secs":60.0,"complete":true,"runs":1,"running":1,"requests":100,"failed":2,"error_rate":0.02,"rps":50.0,"errors":0,"status_codes":{"200":98,"500":2},"latency_ms":{"mean":0.9,"p50":0.8,"p90":1.5,"p95":2.0,"p99":4.5},"message":null}"#,
    );
    assert_eq!(l.query("test/web error_rate", MINUTE).await, Ok(0.02));
    let seen = fake.last();
    assert_eq!(seen.path, "/results/test/web");
    assert_eq!(
        seen.query["window"], "60",
        "the metric's interval is the window"
    );
    assert_eq!(l.query("test/web p99", MINUTE).await, Ok(4.5));
    assert!(error_text(l.query("test/web p42", MINUTE).await).contains("error_rate, rps"));
    assert!(error_text(l.query("web", MINUTE).await).contains("<namespace>/<name> <field>"));

    fake.answer(
        200,
        r#"{"canary":"test/web","window_secs":60.0,"complete":false,"runs":1,"running":1,"requests":3,"failed":0,"error_rate":0.0,"rps":3.0,"errors":0,"status_codes":{},"latency_ms":null,"message":"its first 60s window completes in 59s"}"#,
    );
    assert!(is_no_data(l.query("test/web rps", MINUTE).await));
    fake.answer(404, "no run");
    assert!(is_no_data(l.query("test/web rps", MINUTE).await));
}

#[tokio::test]
async fn unreachable_is_an_error() {
    let d = provider(
        "dynatrace",
        "http://127.0.0.1:1",
        &[("dynatrace_token", "t")],
    );
    assert!(error_text(d.query("m", MINUTE).await).contains("unreachable"));
}

#[tokio::test]
async fn unknown_type_names_the_choices() {
    let p = MetricTemplateProvider {
        type_: "stackdriver".into(),
        ..Default::default()
    };
    let err = MetricProvider::new(&p, &BTreeMap::new(), "").unwrap_err();
    assert!(err.to_string().contains("\"stackdriver\""), "{err}");
    assert!(err.to_string().contains("datadog"), "{err}");
}
