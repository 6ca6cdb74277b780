//! The names a user can write for a traffic provider (`spec.provider`, `--mesh-provider`, the
//! chart's `meshProvider`) and for a metric provider (`MetricTemplate.spec.provider.type`).
//!
//! Each is one enum shared by validation, admission, the controller, the builtin queries,
//! `serin simulate` and the chart's values schema (a test compares them), so a name cannot be
//! accepted in one place and unknown in another. A name serin does not drive is still parsed, so
//! the refusal can say why and what to use instead; [`Support`] carries that verdict.

use std::fmt;

/// Whether serin drives a provider it can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// serin drives it end to end.
    Driven,
    /// Named by Flagger but not driven by serin: refused everywhere, with this fix.
    Refused(&'static str),
}

/// Traffic providers: Flagger's list, plus serin's `local`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrafficProvider {
    /// Blue/green without a traffic split: no router objects.
    Kubernetes,
    /// Gateway API `HTTPRoute` (`gatewayapi`, `gatewayapi:v1`; `gatewayapi:v1beta1` writes v1beta1).
    GatewayApi {
        v1beta1: bool,
    },
    Istio,
    /// Linkerd through an SMI `TrafficSplit`.
    Linkerd,
    /// SMI `TrafficSplit` (`smi` is `smi:v1alpha2`).
    Smi(SmiVersion),
    /// Open Service Mesh through an SMI `TrafficSplit`.
    Osm,
    /// NGINX ingress canary annotations.
    Nginx,
    /// Traefik `TraefikService`.
    Traefik,
    /// Contour `HTTPProxy`.
    Contour,
    Gloo,
    Skipper,
    Kuma,
    Apisix,
    Knative,
    /// AWS App Mesh (`appmesh`, `appmesh:v1beta2`), retired by AWS.
    AppMesh,
    /// serin's local mode (`serin run`): the embedded router, Traefik or nginx on this machine.
    Local,
}

/// Every spelling [`TrafficProvider::parse`] accepts, in the order docs list them.
pub const TRAFFIC_PROVIDER_NAMES: [&str; 22] = [
    "kubernetes",
    "gatewayapi",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "istio",
    "linkerd",
    "smi",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "osm",
    "nginx",
    "traefik",
    "contour",
    "gloo",
    "skipper",
    "kuma",
    "apisix",
    "knative",
    "appmesh",
    "appmesh:v1beta2",
    "local",
];

impl TrafficProvider {
    /// Parses a provider as written in a Canary or a flag.
    pub fn parse(name: &str) -> Option<Self> {
        use TrafficProvider::*;
        Some(match name {
            "kubernetes" => Kubernetes,
            "gatewayapi" | "gatewayapi:v1" => GatewayApi { v1beta1: false },
            "gatewayapi:v1beta1" => GatewayApi { v1beta1: true },
            "istio" => Istio,
            "linkerd" => Linkerd,
            "smi:v1alpha1" => Smi(SmiVersion::V1alpha1),
            "smi" | "smi:v1alpha2" => Smi(SmiVersion::V1alpha2),
            "smi:v1alpha3" => Smi(SmiVersion::V1alpha3),
            "osm" => Osm,
            "nginx" => Nginx,
            "traefik" => Traefik,
            "contour" => Contour,
            "gloo" => Gloo,
            "skipper" => Skipper,
            "kuma" => Kuma,
            "apisix" => Apisix,
            "knative" => Knative,
            "appmesh" | "appmesh:v1beta2" => AppMesh,
            "local" => Local,
            _ => return None,
        })
    }

    /// The provider's family name (`gatewayapi` for every Gateway API version).
    pub fn family(self) -> &'static str {
        use TrafficProvider::*;
        match self {
            Kubernetes => "kubernetes",
            GatewayApi { .. } => "gatewayapi",
            Istio => "istio",
            Linkerd => "linkerd",
            Smi(_) => "smi",
            Osm => "osm",
            Nginx => "nginx",
            Traefik => "traefik",
            Contour => "contour",
            Gloo => "gloo",
            Skipper => "skipper",
            Kuma => "kuma",
            Apisix => "apisix",
            Knative => "knative",
            AppMesh => "appmesh",
            Local => "local",
        }
    }

    /// Whether serin drives it, and the fix when it does not.
    pub fn support(self) -> Support {
        use TrafficProvider::*;
        match self {
            Smi(SmiVersion::V1alpha1) => Support::Refused(
                "SMI v1alpha1 TrafficSplits (weights as quantities) are not written by serin: use \
                 smi:v1alpha2 or smi:v1alpha3",
            ),
            Kubernetes
            | GatewayApi { .. }
            | Istio
            | Linkerd
            | Smi(_)
            | Osm
            | Nginx
            | Traefik
            | Contour
            | Local => Support::Driven,
            Gloo => Support::Refused(
                "serin does not drive Gloo Edge's RouteTable yet; Gloo Gateway implements the \
                 Gateway API: use provider gatewayapi",
            ),
            Kuma => Support::Refused(
                "serin does not drive Kuma's TrafficRoute yet; Kuma implements the Gateway API \
                 (GAMMA): use provider gatewayapi with a Service parentRef",
            ),
            Apisix => Support::Refused(
                "serin does not drive ApisixRoute yet; the APISIX ingress controller implements \
                 the Gateway API: use provider gatewayapi",
            ),
            Skipper => Support::Refused(
                "serin does not drive Skipper's Ingress backend weights yet: use provider nginx, \
                 traefik or gatewayapi, or kubernetes for blue/green",
            ),
            Knative => Support::Refused(
                "serin does not drive Knative Service traffic yet: canary the Deployment behind \
                 it with provider gatewayapi, istio or kubernetes",
            ),
            AppMesh => Support::Refused(
                "AWS App Mesh reached its end of support on 30 September 2026 and serin does not \
                 drive it: move the mesh to istio, linkerd or gatewayapi (Amazon VPC Lattice \
                 implements the Gateway API)",
            ),
        }
    }

    /// Whether its router can copy traffic to the canary (`analysis.mirror`).
    pub fn can_mirror(self) -> bool {
        matches!(
            self,
            TrafficProvider::Istio | TrafficProvider::GatewayApi { .. } | TrafficProvider::Traefik
        )
    }

    /// The names serin drives in a cluster, for the chart's `meshProvider` enum.
    pub fn cluster_names() -> impl Iterator<Item = &'static str> {
        TRAFFIC_PROVIDER_NAMES.into_iter().filter(|n| {
            TrafficProvider::parse(n)
                .is_some_and(|p| p != TrafficProvider::Local && p.support() == Support::Driven)
        })
    }
}

impl fmt::Display for TrafficProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrafficProvider::GatewayApi { v1beta1: true } => f.write_str("gatewayapi:v1beta1"),
            TrafficProvider::Smi(v) if *v != SmiVersion::V1alpha2 => {
                write!(f, "smi:{}", v.as_str())
            }
            p => f.write_str(p.family()),
        }
    }
}

/// The `split.smi-spec.io` version a TrafficSplit is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SmiVersion {
    V1alpha1,
    V1alpha2,
    V1alpha3,
}

impl SmiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SmiVersion::V1alpha1 => "v1alpha1",
            SmiVersion::V1alpha2 => "v1alpha2",
            SmiVersion::V1alpha3 => "v1alpha3",
        }
    }
}

/// Metric providers (`MetricTemplate.spec.provider.type`): Flagger's list, plus serin's
/// `loadtester` (the loadtester's results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricProviderType {
    Prometheus,
    Datadog,
    NewRelic,
    Graphite,
    InfluxDb,
    Dynatrace,
    CloudWatch,
    Splunk,
    Loadtester,
    Stackdriver,
    Keptn,
    ExternalMetrics,
}

/// Every spelling [`MetricProviderType::parse`] accepts.
pub const METRIC_PROVIDER_NAMES: [&str; 12] = [
    "prometheus",
    "datadog",
    "newrelic",
    "graphite",
    "influxdb",
    "dynatrace",
    "cloudwatch",
    "splunk",
    "loadtester",
    "stackdriver",
    "keptn",
    "externalmetrics",
];

impl MetricProviderType {
    /// Parses `provider.type`; an empty type is `prometheus`, as in Flagger.
    pub fn parse(name: &str) -> Option<Self> {
        use MetricProviderType::*;
        Some(match name {
            "" | "prometheus" => Prometheus,
            "datadog" => Datadog,
            "newrelic" => NewRelic,
            "graphite" => Graphite,
            "influxdb" => InfluxDb,
            "dynatrace" => Dynatrace,
            "cloudwatch" => CloudWatch,
            "splunk" => Splunk,
            "loadtester" => Loadtester,
            "stackdriver" => Stackdriver,
            "keptn" => Keptn,
            "externalmetrics" => ExternalMetrics,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use MetricProviderType::*;
        match self {
            Prometheus => "prometheus",
            Datadog => "datadog",
            NewRelic => "newrelic",
            Graphite => "graphite",
            InfluxDb => "influxdb",
            Dynatrace => "dynatrace",
            CloudWatch => "cloudwatch",
            Splunk => "splunk",
            Loadtester => "loadtester",
            Stackdriver => "stackdriver",
            Keptn => "keptn",
            ExternalMetrics => "externalmetrics",
        }
    }

    /// Whether serin queries it, and the fix when it does not.
    pub fn support(self) -> Support {
        use MetricProviderType::*;
        match self {
            Prometheus | Datadog | NewRelic | Graphite | InfluxDb | Dynatrace | CloudWatch
            | Splunk | Loadtester => Support::Driven,
            Stackdriver => Support::Refused(
                "serin does not query Google Cloud Monitoring yet: use its Prometheus-compatible \
                 endpoint with provider type prometheus (Managed Service for Prometheus)",
            ),
            Keptn => Support::Refused(
                "serin does not read Keptn analyses yet: query the metrics Keptn reads from \
                 their source (prometheus, datadog, dynatrace) directly",
            ),
            ExternalMetrics => Support::Refused(
                "serin does not read the Kubernetes external metrics API yet: query the metric's \
                 source (e.g. prometheus) directly",
            ),
        }
    }

    /// The names serin queries.
    pub fn driven_names() -> impl Iterator<Item = &'static str> {
        METRIC_PROVIDER_NAMES.into_iter().filter(|n| {
            MetricProviderType::parse(n).is_some_and(|p| p.support() == Support::Driven)
        })
    }
}

impl fmt::Display for MetricProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_parses_and_prints_its_family() {
        for name in TRAFFIC_PROVIDER_NAMES {
            let p = TrafficProvider::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert!(name.starts_with(p.family()), "{name} -> {}", p.family());
        }
        for name in METRIC_PROVIDER_NAMES {
            let p = MetricProviderType::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(p.as_str(), name);
        }
        assert_eq!(TrafficProvider::parse("appmesh:v9"), None);
        assert_eq!(
            TrafficProvider::parse("gatewayapi:v1beta1").map(|p| p.to_string()),
            Some("gatewayapi:v1beta1".into())
        );
    }

    #[test]
    fn refused_providers_are_not_offered_to_clusters() {
        let names: Vec<_> = TrafficProvider::cluster_names().collect();
        for refused in [
            "appmesh",
            "smi:v1alpha1",
            "gloo",
            "kuma",
            "apisix",
            "skipper",
            "knative",
            "local",
        ] {
            assert!(!names.contains(&refused), "{refused}");
        }
        assert!(names.contains(&"gatewayapi:v1beta1"));
    }
}
