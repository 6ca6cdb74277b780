//! The builtin metrics `request-success-rate` (%) and `request-duration` (ms): Flagger's PromQL
//! for each provider (reference/flagger.md §2.5), with the selectors rewritten for serin's names.
//!
//! In Flagger the canary pods belong to the target (`web`) and its Services are `<svc>-canary`;
//! in serin the canary workload is `web-canary` (`{{ target }}`) and its Service `<svc>-canary`
//! (`{{ service }}-canary`). Selectors that Flagger wrote with `{{ target }}` standing for the
//! *Service* name are written here with `{{ service }}`, so every query selects the canary's series
//! and nothing of the primary's (tested below against both sides' label values).

use serin_api::judge::JudgeQueries;
use serin_api::provider::TrafficProvider;
use serin_api::template::{RenderError, TemplateVars, render};

/// Which builtin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    RequestSuccessRate,
    RequestDuration,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "request-success-rate" => Some(Builtin::RequestSuccessRate),
            "request-duration" => Some(Builtin::RequestDuration),
            _ => None,
        }
    }
}

const HTTP_POD: &str = r#"kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#;

/// The query template (before rendering) for a provider. Unknown providers use Istio's
/// queries, as Flagger does.
pub fn query_template(provider: TrafficProvider, builtin: Builtin) -> String {
    use Builtin::*;
    let family = provider.family();
    match (family, builtin) {
        ("linkerd", RequestSuccessRate) => r#"sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",classification!="failure",direction="inbound"}[{{ interval }}])) / sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) * 100"#.into(),
        ("linkerd", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) by (le))"#.into(),
        ("nginx", RequestSuccessRate) => r#"sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!="",status!~"5.*"}[{{ interval }}])) / sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 100"#.into(),
        ("nginx", RequestDuration) => r#"sum(rate(nginx_ingress_controller_response_duration_seconds_sum{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) / sum(rate(nginx_ingress_controller_response_duration_seconds_count{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 1000"#.into(),
        ("traefik", RequestSuccessRate) => r#"sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd",code!~"5..",le="+Inf"}[{{ interval }}])) / sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd",le="+Inf"}[{{ interval }}])) * 100"#.into(),
        ("traefik", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd"}[{{ interval }}])) by (le)) * 1000"#.into(),
        ("gatewayapi" | "kubernetes", RequestSuccessRate) => format!(r#"sum(rate(http_request_duration_seconds_count{{{HTTP_POD},status!~"5.*"}}[{{{{ interval }}}}])) / sum(rate(http_request_duration_seconds_count{{{HTTP_POD}}}[{{{{ interval }}}}])) * 100"#),
        ("gatewayapi" | "kubernetes", RequestDuration) => format!(r#"histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{{{HTTP_POD}}}[{{{{ interval }}}}])) by (le)) * 1000"#),
        ("contour", RequestSuccessRate) => r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#.into(),
        ("contour", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#.into(),
        ("gloo", RequestSuccessRate) => r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#.into(),
        ("gloo", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#.into(),
        ("appmesh", RequestSuccessRate) => r#"sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100"#.into(),
        ("appmesh", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) by (le))"#.into(),
        ("kuma", RequestSuccessRate) => r#"sum(rate(envoy_cluster_upstream_rq{service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100"#.into(),
        ("kuma", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))"#.into(),
        ("osm", RequestSuccessRate) => r#"sum(rate(osm_request_total{destination_namespace="{{ namespace }}",destination_kind="Deployment",destination_name="{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(osm_request_total{destination_namespace="{{ namespace }}",destination_kind="Deployment",destination_name="{{ target }}"}[{{ interval }}])) * 100"#.into(),
        ("osm", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(osm_request_duration_ms_bucket{destination_namespace="{{ namespace }}",destination_kind="Deployment",destination_name="{{ target }}"}[{{ interval }}])) by (le))"#.into(),
        ("skipper", RequestSuccessRate) => r#"sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?",code!~"5..",le="+Inf"}[{{ interval }}])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?",le="+Inf"}[{{ interval }}])) * 100"#.into(),
        ("skipper", RequestDuration) => r#"sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?"}[{{ interval }}])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?"}[{{ interval }}])) * 1000"#.into(),
        ("apisix", RequestSuccessRate) => r#"sum(rate(apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+",code!~"5.."}[{{ interval }}])) / sum(rate(apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+"}[{{ interval }}])) * 100"#.into(),
        ("apisix", RequestDuration) => r#"histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~"request",route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+"}[{{ interval }}])) by (le))"#.into(),
        (_, RequestSuccessRate) => r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) * 100"#.into(),
        (_, RequestDuration) => r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))"#.into(),
    }
}

/// The rendered query for a provider.
pub fn query(
    provider: TrafficProvider,
    builtin: Builtin,
    vars: &TemplateVars,
) -> Result<String, RenderError> {
    render(&query_template(provider, builtin), vars)
}

/// The series a provider counts requests in, for the judge: the metric, the labels both sides
/// share, each side's selector (the same label as Flagger's query, pointed at the canary or at
/// the primary) and the matcher of failed requests.
struct CountSeries {
    metric: &'static str,
    common: &'static str,
    canary: &'static str,
    primary: &'static str,
    failed: &'static str,
}

fn count_series(provider: TrafficProvider) -> CountSeries {
    let family = provider.family();
    let (metric, common, canary, primary, failed) = match family {
        "linkerd" => (
            "response_total",
            r#"namespace="{{ namespace }}",direction="inbound""#,
            r#"deployment=~"{{ target }}""#,
            r#"deployment=~"{{ primary }}""#,
            r#"classification="failure""#,
        ),
        // The NGINX controller labels the requests its canary Ingress routed with `canary`.
        "nginx" => (
            "nginx_ingress_controller_requests",
            r#"namespace="{{ namespace }}",ingress="{{ ingress }}""#,
            r#"canary!="""#,
            r#"canary="""#,
            r#"status=~"5.*""#,
        ),
        "traefik" => (
            "traefik_service_request_duration_seconds_bucket",
            r#"le="+Inf""#,
            r#"service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd""#,
            r#"service=~"{{ namespace }}-{{ service }}-primary-[0-9a-zA-Z-]+@kubernetescrd""#,
            r#"code=~"5..""#,
        ),
        "gatewayapi" | "kubernetes" => (
            "http_request_duration_seconds_count",
            r#"kubernetes_namespace="{{ namespace }}""#,
            r#"kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#,
            r#"kubernetes_pod_name=~"{{ primary }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#,
            r#"status=~"5.*""#,
        ),
        "contour" => (
            "envoy_cluster_upstream_rq",
            "",
            r#"envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+""#,
            r#"envoy_cluster_name=~"{{ namespace }}_{{ service }}-primary_[0-9a-zA-Z-]+""#,
            r#"envoy_response_code=~"5.*""#,
        ),
        "gloo" => (
            "envoy_cluster_upstream_rq",
            "",
            r#"envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+""#,
            r#"envoy_cluster_name=~"{{ namespace }}-{{ service }}-primaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+""#,
            r#"envoy_response_code=~"5.*""#,
        ),
        "appmesh" => (
            "envoy_cluster_upstream_rq",
            r#"kubernetes_namespace="{{ namespace }}""#,
            r#"kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#,
            r#"kubernetes_pod_name=~"{{ primary }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)""#,
            r#"envoy_response_code=~"5.*""#,
        ),
        "kuma" => (
            "envoy_cluster_upstream_rq",
            "",
            r#"service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+""#,
            r#"service=~"{{ service }}-primary_{{ namespace }}_svc_[0-9a-zA-Z-]+""#,
            r#"envoy_response_code=~"5.*""#,
        ),
        "osm" => (
            "osm_request_total",
            r#"destination_namespace="{{ namespace }}",destination_kind="Deployment""#,
            r#"destination_name="{{ target }}""#,
            r#"destination_name="{{ primary }}""#,
            r#"response_code=~"5.*""#,
        ),
        "skipper" => (
            "skipper_response_duration_seconds_bucket",
            r#"le="+Inf""#,
            r#"route=~"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?""#,
            r#"route=~"kube(ew)?_{{ namespace }}__{{ ingress }}__.*__{{ service }}_primary(_[0-9]+)?""#,
            r#"code=~"5..""#,
        ),
        "apisix" => (
            "apisix_http_status",
            "",
            r#"route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+""#,
            r#"route=~"{{ namespace }}_{{ route }}-{{ service }}-primary_.+""#,
            r#"code=~"5..""#,
        ),
        _ => (
            "istio_requests_total",
            r#"reporter="destination",destination_workload_namespace="{{ namespace }}""#,
            r#"destination_workload=~"{{ target }}""#,
            r#"destination_workload=~"{{ primary }}""#,
            r#"response_code=~"5.*""#,
        ),
    };
    CountSeries {
        metric,
        common,
        canary,
        primary,
        failed,
    }
}

/// The judge's count queries for `request-success-rate` (before rendering): requests and failed
/// requests per side over the metric's interval, from the series Flagger's query divides.
/// Unknown providers use Istio's series, as for the builtin queries.
pub fn count_templates(provider: TrafficProvider) -> JudgeQueries {
    let s = count_series(provider);
    let q = |side: &str, failed: bool| {
        let labels: Vec<&str> = [s.common, side, if failed { s.failed } else { "" }]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect();
        format!(
            "sum(increase({}{{{}}}[{{{{ interval }}}}]))",
            s.metric,
            labels.join(",")
        )
    };
    JudgeQueries {
        canary_total: q(s.canary, false),
        canary_failed: q(s.canary, true),
        primary_total: q(s.primary, false),
        primary_failed: q(s.primary, true),
    }
}

/// The judge's histogram queries for `request-duration` (before rendering), `(canary,
/// primary)`: each side's latency buckets over the metric's interval, `sum by (le)`, from the
/// histogram Flagger's query takes its quantile of. `None` for providers whose builtin latency is
/// an average (nginx, skipper): they export no buckets to count slow requests with.
pub fn bucket_templates(provider: TrafficProvider) -> Option<(String, String)> {
    let family = provider.family();
    let s = count_series(provider);
    let (metric, common) = match family {
        "nginx" | "skipper" => return None,
        "linkerd" => ("response_latency_ms_bucket", s.common),
        "traefik" => ("traefik_service_request_duration_seconds_bucket", ""),
        "gatewayapi" | "kubernetes" => ("http_request_duration_seconds_bucket", s.common),
        "contour" | "gloo" | "appmesh" | "kuma" => {
            ("envoy_cluster_upstream_rq_time_bucket", s.common)
        }
        "osm" => ("osm_request_duration_ms_bucket", s.common),
        "apisix" => ("apisix_http_latency_bucket", r#"type=~"request""#),
        _ => ("istio_request_duration_milliseconds_bucket", s.common),
    };
    let q = |side: &str| {
        let labels: Vec<&str> = [common, side]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect();
        format!(
            "sum by (le) (increase({metric}{{{}}}[{{{{ interval }}}}]))",
            labels.join(",")
        )
    };
    Some((q(s.canary), q(s.primary)))
}

/// Renders the four queries of `queries` (a builtin's [`count_templates`] or a MetricTemplate's
/// `spec.judge`).
pub fn render_counts(
    queries: &JudgeQueries,
    vars: &TemplateVars,
) -> Result<JudgeQueries, RenderError> {
    Ok(JudgeQueries {
        canary_total: render(&queries.canary_total, vars)?,
        canary_failed: render(&queries.canary_failed, vars)?,
        primary_total: render(&queries.primary_total, vars)?,
        primary_failed: render(&queries.primary_failed, vars)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDERS: [&str; 13] = [
        "istio",
        "linkerd",
        "nginx",
        "traefik",
        "gatewayapi:v1",
        "kubernetes",
        "contour",
        "gloo",
        "appmesh",
        "kuma",
        "osm",
        "skipper",
        "apisix",
    ];

    fn tp(name: &str) -> TrafficProvider {
        TrafficProvider::parse(name).expect(name)
    }

    fn vars() -> TemplateVars {
        TemplateVars {
            name: "web".into(),
            namespace: "prod".into(),
            target: "web-canary".into(),
            primary: "web".into(),
            service: "web".into(),
            ingress: "web".into(),
            route: "web".into(),
            interval: "1m".into(),
            variables: Default::default(),
        }
    }

    /// Label values each side's series carry, per provider: (canary, primary).
    fn series(provider: &str) -> (&'static str, &'static str) {
        match provider.split(':').next().unwrap() {
            "istio" | "linkerd" => ("web-canary", "web"),
            "gatewayapi" | "kubernetes" | "appmesh" => {
                ("web-canary-7d9f8c6b5-x2x9k", "web-5c8d7f9b6-q8w7e")
            }
            "traefik" => (
                "prod-web-canary-80@kubernetescrd",
                "prod-web-primary-80@kubernetescrd",
            ),
            "contour" => ("prod_web-canary_80", "prod_web-primary_80"),
            "gloo" => (
                "prod-web-canaryupstream-80_gloo-system",
                "prod-web-primaryupstream-80_gloo-system",
            ),
            "kuma" => ("web-canary_prod_svc_80", "web-primary_prod_svc_80"),
            "osm" => ("web-canary", "web"),
            "skipper" => (
                "kube_prod__web_canary__web_example_com____web_canary",
                "kube_prod__web__web_example_com____web_primary",
            ),
            "apisix" => ("prod_web-web-canary_1", "prod_web-web-primary_1"),
            "nginx" => ("", ""),
            other => panic!("no series for {other}"),
        }
    }

    /// Does an anchored Prometheus (RE2) matcher match? Enough of RE2 for these selectors.
    fn matches(pattern: &str, value: &str) -> bool {
        regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .unwrap()
            .is_match(value)
    }

    /// Every workload selector of `q` matches `yes` and not `no`.
    fn selects(provider: &str, q: &str, yes: &str, no: &str) {
        let label_re = regex_lite::Regex::new(r#"(\w+)(=~|=)"([^"]*)""#).unwrap();
        let workload_labels = [
            "destination_workload",
            "deployment",
            "kubernetes_pod_name",
            "service",
            "envoy_cluster_name",
            "destination_name",
            "route",
        ];
        let selectors: Vec<(String, String, String)> = label_re
            .captures_iter(q)
            .map(|c| (c[1].to_string(), c[2].to_string(), c[3].to_string()))
            .filter(|(l, _, _)| workload_labels.contains(&l.as_str()))
            .collect();
        assert!(
            !selectors.is_empty(),
            "{provider}: no workload selector in {q}"
        );
        for (label, op, pat) in selectors {
            let hit = |v: &str| {
                if op == "=" {
                    pat == v
                } else {
                    matches(&pat, v)
                }
            };
            assert!(
                hit(yes),
                "{provider}: {label}{op}{pat:?} misses {yes} in {q}"
            );
            assert!(
                !hit(no),
                "{provider}: {label}{op}{pat:?} selects {no} in {q}"
            );
        }
    }

    #[test]
    fn count_queries_select_each_side_and_the_failures() {
        for provider in PROVIDERS {
            let q = render_counts(&count_templates(tp(provider)), &vars()).unwrap();
            let all = [
                &q.canary_total,
                &q.canary_failed,
                &q.primary_total,
                &q.primary_failed,
            ];
            for one in all {
                assert!(!one.contains("{{"), "{provider}: unrendered: {one}");
                assert!(
                    one.starts_with("sum(increase(") && one.ends_with("[1m]))"),
                    "{one}"
                );
            }
            // Each failed query is its total query plus one matcher of 5xx / failures.
            for (total, failed) in [
                (&q.canary_total, &q.canary_failed),
                (&q.primary_total, &q.primary_failed),
            ] {
                assert!(failed.len() > total.len(), "{failed}");
                assert!(
                    failed.contains(r#"=~"5"#) || failed.contains(r#"classification="failure""#),
                    "{provider}: no failure matcher in {failed}"
                );
            }
            if provider == "nginx" {
                assert!(
                    q.canary_total.contains(r#"canary!="""#),
                    "{}",
                    q.canary_total
                );
                assert!(
                    q.primary_total.contains(r#"canary="""#),
                    "{}",
                    q.primary_total
                );
                continue;
            }
            let (canary, primary) = series(provider);
            selects(provider, &q.canary_total, canary, primary);
            selects(provider, &q.canary_failed, canary, primary);
            selects(provider, &q.primary_total, primary, canary);
            selects(provider, &q.primary_failed, primary, canary);
        }
        // The success-rate query's own series: what Flagger divides is what the judge counts.
        let istio = count_templates(tp("istio"));
        assert!(
            query_template(tp("istio"), Builtin::RequestSuccessRate)
                .contains("istio_requests_total")
        );
        assert!(istio.canary_total.contains("istio_requests_total"));
    }

    #[test]
    fn bucket_queries_select_each_side_of_the_duration_histogram() {
        for provider in PROVIDERS {
            let Some((canary_q, primary_q)) = bucket_templates(tp(provider)) else {
                assert!(matches!(provider, "nginx" | "skipper"), "{provider}");
                continue;
            };
            let canary_q = render(&canary_q, &vars()).unwrap();
            let primary_q = render(&primary_q, &vars()).unwrap();
            // The same histogram as Flagger's request-duration query.
            let flagger = query(tp(provider), Builtin::RequestDuration, &vars()).unwrap();
            let metric = canary_q
                .split("increase(")
                .nth(1)
                .and_then(|r| r.split('{').next())
                .unwrap();
            assert!(
                flagger.contains(metric),
                "{provider}: {metric} not in {flagger}"
            );
            assert!(canary_q.starts_with("sum by (le) (increase("), "{canary_q}");
            let (canary, primary) = series(provider);
            selects(provider, &canary_q, canary, primary);
            selects(provider, &primary_q, primary, canary);
        }
    }

    #[test]
    fn every_query_selects_the_canary_and_not_the_primary() {
        for provider in PROVIDERS {
            for builtin in [Builtin::RequestSuccessRate, Builtin::RequestDuration] {
                let q = query(tp(provider), builtin, &vars()).unwrap();
                assert!(!q.contains("{{"), "{provider}: unrendered: {q}");
                let (canary, primary) = series(provider);
                if provider == "nginx" {
                    // NGINX labels canary traffic itself: canary!="" selects only the canary Ingress.
                    assert!(
                        q.contains(r#"canary!="""#) && q.contains(r#"ingress="web""#),
                        "{q}"
                    );
                    continue;
                }
                selects(provider, &q, canary, primary);
            }
        }
    }
}
