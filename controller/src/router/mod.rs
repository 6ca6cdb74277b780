//! Traffic routers: each writes the provider's object for a Canary and reads the weights back
//! from it (the object, not the status, is the source of truth after a restart, as in Flagger).

mod contour;
mod gatewayapi;
mod istio;
mod nginx;
mod smi;
mod traefik;

use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::provider::{SmiVersion, Support, TrafficProvider};

use crate::Error;

/// The routers serin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// Blue/green without a traffic split (Flagger's `kubernetes` provider): no objects.
    Kubernetes,
    /// Gateway API HTTPRoute, in `v1` or `v1beta1`; with a parentRef of kind Service it is GAMMA
    /// (Linkerd and other meshes).
    GatewayApi { v1beta1: bool },
    /// Traefik `TraefikService` (traefik.io/v1alpha1) with weighted services.
    Traefik,
    /// Istio VirtualService + DestinationRules.
    Istio,
    /// NGINX ingress: a `<ingress>-canary` Ingress with canary annotations.
    Nginx,
    /// Linkerd / SMI / OSM TrafficSplit in this `split.smi-spec.io` version.
    Smi(SmiVersion),
    /// Contour HTTPProxy.
    Contour,
}

impl Router {
    /// The router for a provider; a provider serin does not drive is an error with its fix.
    pub fn for_provider(provider: TrafficProvider) -> Result<Router, Error> {
        let refused = |fix: &str| Error::Router {
            provider: provider.to_string(),
            message: fix.to_string(),
        };
        if let Support::Refused(fix) = provider.support() {
            return Err(refused(fix));
        }
        Ok(match provider {
            TrafficProvider::Kubernetes => Router::Kubernetes,
            TrafficProvider::GatewayApi { v1beta1 } => Router::GatewayApi { v1beta1 },
            TrafficProvider::Traefik => Router::Traefik,
            TrafficProvider::Istio => Router::Istio,
            TrafficProvider::Nginx => Router::Nginx,
            TrafficProvider::Linkerd | TrafficProvider::Osm => Router::Smi(SmiVersion::V1alpha2),
            TrafficProvider::Smi(v) => Router::Smi(v),
            TrafficProvider::Contour => Router::Contour,
            TrafficProvider::Local => {
                return Err(refused(
                    "local is serin run's router: in a cluster use kubernetes, gatewayapi, \
                     traefik, istio, nginx, linkerd/smi/osm or contour",
                ));
            }
            other => return Err(refused(&format!("{other} has no router in serin"))),
        })
    }

    fn resource(self) -> Option<ApiResource> {
        let (group, version, kind, plural) = match self {
            Router::Kubernetes => return None,
            Router::GatewayApi { v1beta1 } => (
                "gateway.networking.k8s.io",
                if v1beta1 { "v1beta1" } else { "v1" },
                "HTTPRoute",
                "httproutes",
            ),
            Router::Traefik => (
                "traefik.io",
                "v1alpha1",
                "TraefikService",
                "traefikservices",
            ),
            Router::Istio => (
                "networking.istio.io",
                "v1",
                "VirtualService",
                "virtualservices",
            ),
            Router::Nginx => ("networking.k8s.io", "v1", "Ingress", "ingresses"),
            Router::Smi(version) => (
                "split.smi-spec.io",
                version.as_str(),
                "TrafficSplit",
                "trafficsplits",
            ),
            Router::Contour => ("projectcontour.io", "v1", "HTTPProxy", "httpproxies"),
        };
        Some(ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ))
    }

    /// The router's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Router::Kubernetes => "kubernetes",
            Router::GatewayApi { .. } => "gatewayapi",
            Router::Traefik => "traefik",
            Router::Istio => "istio",
            Router::Nginx => "nginx",
            Router::Smi(_) => "smi",
            Router::Contour => "contour",
        }
    }

    /// A 404 on creating the router's object means the API server does not serve its kind: the
    /// router's CRDs are missing. Said as a router error, so the Canary is held with the fix.
    fn unavailable(self, ar: &ApiResource, e: kube::Error) -> Error {
        match e {
            kube::Error::Api(ref status) if status.code == 404 => Error::Router {
                provider: self.name().into(),
                message: format!(
                    "the API server does not serve {}.{}/{}: install the router's CRDs, or set \
                     spec.provider to a router the cluster has",
                    ar.plural, ar.group, ar.version
                ),
            },
            e => e.into(),
        }
    }

    /// Name of the router's object for this Canary.
    fn object_name(self, canary: &Canary) -> Result<String, Error> {
        match self {
            Router::Nginx => nginx::canary_ingress_name(canary).ok_or_else(|| Error::Router {
                provider: "nginx".into(),
                message: "spec.ingressRef is required: name the Ingress that serves the app".into(),
            }),
            _ => Ok(canary.spec.service_name().to_string()),
        }
    }

    /// Writes the router's object with these weights (creating it when absent).
    pub async fn set_routes(
        self,
        client: &Client,
        canary: &Canary,
        routes: Routes,
    ) -> Result<(), Error> {
        let Some(ar) = self.resource() else {
            return Ok(());
        };
        let ns = canary.namespace().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let name = self.object_name(canary)?;
        let (spec, annotations) = match self {
            Router::GatewayApi { .. } => (gatewayapi::spec(canary, routes), None),
            Router::Traefik => (traefik::spec(canary, routes), None),
            Router::Istio => (istio::spec(canary, routes), None),
            Router::Smi(_) => (smi::spec(canary, routes), None),
            Router::Contour => (contour::spec(canary, routes), None),
            Router::Nginx => {
                let user = canary
                    .spec
                    .ingress_ref
                    .as_ref()
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                let ingress = api.get_opt(&user).await?.ok_or_else(|| Error::Router {
                    provider: "nginx".into(),
                    message: format!("Ingress {ns}/{user} (spec.ingressRef) not found"),
                })?;
                let user_spec = ingress.data.get("spec").cloned().unwrap_or_default();
                (
                    nginx::spec(canary, &user_spec),
                    Some(nginx::annotations(canary, routes)),
                )
            }
            Router::Kubernetes => unreachable!("no object"),
        };
        let mut patch = json!({ "spec": spec.clone() });
        if let Some(a) = &annotations {
            patch["metadata"] = json!({ "annotations": a });
        }
        // PATCH first: the object exists on every tick but the first, so no GET is needed.
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {
                let mut obj = DynamicObject::new(&name, &ar).within(&ns);
                obj.data = json!({ "spec": without_nulls(spec) });
                let meta = obj.meta_mut();
                meta.labels = Some(
                    [(
                        serin_api::labels::CANARY_LABEL.to_string(),
                        canary.name_any(),
                    )]
                    .into(),
                );
                meta.owner_references = crate::workload::owner_reference(canary).map(|o| vec![o]);
                if let Some(a) = annotations {
                    meta.annotations = Some(
                        a.into_iter()
                            .filter_map(|(k, v)| v.map(|v| (k, v)))
                            .collect(),
                    );
                }
                api.create(&PostParams::default(), &obj)
                    .await
                    .map_err(|e| self.unavailable(&ar, e))?;
                if self == Router::Istio {
                    self.create_destination_rules(client, canary).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn create_destination_rules(self, client: &Client, canary: &Canary) -> Result<(), Error> {
        let ns = canary.namespace().unwrap_or_default();
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("networking.istio.io", "v1", "DestinationRule"),
            "destinationrules",
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        for (name, spec) in istio::destination_rules(canary) {
            if api.get_opt(&name).await?.is_none() {
                let mut obj = DynamicObject::new(&name, &ar).within(&ns);
                obj.data = json!({ "spec": spec });
                obj.meta_mut().owner_references =
                    crate::workload::owner_reference(canary).map(|o| vec![o]);
                api.create(&PostParams::default(), &obj)
                    .await
                    .map_err(|e| self.unavailable(&ar, e))?;
            }
        }
        Ok(())
    }

    /// The weights in the router's object; `None` when there is no object (or no router).
    pub async fn get_routes(
        self,
        client: &Client,
        canary: &Canary,
    ) -> Result<Option<Routes>, Error> {
        let Some(ar) = self.resource() else {
            return Ok(None);
        };
        let ns = canary.namespace().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let Some(obj) = api.get_opt(&self.object_name(canary)?).await? else {
            return Ok(None);
        };
        Ok(read_routes(self, canary, &obj))
    }
}

fn read_routes(router: Router, canary: &Canary, obj: &DynamicObject) -> Option<Routes> {
    let spec: Value = obj.data.get("spec").cloned().unwrap_or_default();
    match router {
        Router::GatewayApi { .. } => gatewayapi::routes(canary, &spec),
        Router::Traefik => traefik::routes(canary, &spec),
        Router::Istio => istio::routes(canary, &spec),
        Router::Smi(_) => smi::routes(canary, &spec),
        Router::Contour => contour::routes(canary, &spec),
        Router::Nginx => Some(nginx::routes(canary, &obj.annotations().clone())),
        Router::Kubernetes => None,
    }
}

/// A merge patch's `null`s mean "remove"; an object being created has nothing to remove.
fn without_nulls(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
        for v in m.values_mut() {
            *v = without_nulls(std::mem::take(v));
        }
    }
    v
}

/// `s` with every regex metacharacter escaped, for prefix and suffix matches written as regexes.
pub(crate) fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// Names of the primary and canary Services.
pub(crate) fn backend_names(canary: &Canary) -> (String, String) {
    let svc = canary.spec.service_name();
    (
        format!("{svc}{}", serin_api::labels::PRIMARY_SUFFIX),
        format!("{svc}{}", serin_api::labels::CANARY_SUFFIX),
    )
}
