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

use crate::Error;

/// The routers serin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// Blue/green without a traffic split (Flagger's `kubernetes` provider): no objects.
    Kubernetes,
    /// Gateway API HTTPRoute (`gatewayapi`, `gatewayapi:v1`, `gatewayapi:v1beta1`); with a
    /// parentRef of kind Service it is GAMMA (Linkerd and other meshes).
    GatewayApi,
    /// Traefik `TraefikService` (traefik.io/v1alpha1) with weighted services.
    Traefik,
    /// Istio VirtualService + DestinationRules.
    Istio,
    /// NGINX ingress: a `<ingress>-canary` Ingress with canary annotations.
    Nginx,
    /// Linkerd / SMI / OSM TrafficSplit.
    Smi,
    /// Contour HTTPProxy.
    Contour,
}

impl Router {
    /// The router for a provider name; an error names the providers that exist.
    pub fn for_provider(provider: &str) -> Result<Router, Error> {
        match provider.split(':').next().unwrap_or("") {
            "kubernetes" => Ok(Router::Kubernetes),
            "gatewayapi" => Ok(Router::GatewayApi),
            "traefik" => Ok(Router::Traefik),
            "istio" => Ok(Router::Istio),
            "nginx" => Ok(Router::Nginx),
            "linkerd" | "smi" | "osm" => Ok(Router::Smi),
            "contour" => Ok(Router::Contour),
            _ => Err(Error::Router {
                provider: provider.to_string(),
                message: "this provider is not implemented yet; use kubernetes, gatewayapi, traefik, istio, nginx, linkerd/smi or contour".into(),
            }),
        }
    }

    fn resource(self) -> Option<ApiResource> {
        let (group, version, kind, plural) = match self {
            Router::Kubernetes => return None,
            Router::GatewayApi => ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
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
            Router::Smi => (
                "split.smi-spec.io",
                "v1alpha2",
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
            Router::GatewayApi => (gatewayapi::spec(canary, routes), None),
            Router::Traefik => (traefik::spec(canary, routes), None),
            Router::Istio => (istio::spec(canary, routes), None),
            Router::Smi => (smi::spec(canary, routes), None),
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
                obj.data = json!({ "spec": spec });
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
                api.create(&PostParams::default(), &obj).await?;
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
                api.create(&PostParams::default(), &obj).await?;
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
        Router::GatewayApi => gatewayapi::routes(canary, &spec),
        Router::Traefik => traefik::routes(canary, &spec),
        Router::Istio => istio::routes(canary, &spec),
        Router::Smi => smi::routes(canary, &spec),
        Router::Contour => contour::routes(canary, &spec),
        Router::Nginx => Some(nginx::routes(canary, &obj.annotations().clone())),
        Router::Kubernetes => None,
    }
}

/// Names of the primary and canary Services.
pub(crate) fn backend_names(canary: &Canary) -> (String, String) {
    let svc = canary.spec.service_name();
    (
        format!("{svc}{}", serin_api::labels::PRIMARY_SUFFIX),
        format!("{svc}{}", serin_api::labels::CANARY_SUFFIX),
    )
}
