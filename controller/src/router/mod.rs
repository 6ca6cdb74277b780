//! Traffic routers: each writes the provider's object for a Canary and reads the weights back
//! from it (the object, not the status, is the source of truth after a restart, as in Flagger).

mod gatewayapi;
mod traefik;

use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Resource, ResourceExt};
use serin_analysis::Routes;
use serin_api::Canary;

use crate::Error;

/// The routers serin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// Blue/green without a traffic split (Flagger's `kubernetes` provider): no objects.
    Kubernetes,
    /// Gateway API HTTPRoute (`gatewayapi`, `gatewayapi:v1`, `gatewayapi:v1beta1`).
    GatewayApi,
    /// Traefik `TraefikService` (traefik.io/v1alpha1) with weighted services.
    Traefik,
}

impl Router {
    /// The router for a provider name; an error names the providers that exist.
    pub fn for_provider(provider: &str) -> Result<Router, Error> {
        match provider.split(':').next().unwrap_or("") {
            "kubernetes" => Ok(Router::Kubernetes),
            "gatewayapi" => Ok(Router::GatewayApi),
            "traefik" => Ok(Router::Traefik),
            _ => Err(Error::Router {
                provider: provider.to_string(),
                message:
                    "this provider is not implemented yet; use kubernetes, gatewayapi or traefik"
                        .into(),
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
        };
        Some(ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ))
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
        let name = canary.spec.service_name().to_string();
        let spec = match self {
            Router::GatewayApi => gatewayapi::spec(canary, routes),
            Router::Traefik => traefik::spec(canary, routes),
            Router::Kubernetes => unreachable!("no object"),
        };
        // PATCH first: the object exists on every tick but the first, so no GET is needed.
        let patch = Patch::Merge(serde_json::json!({ "spec": spec.clone() }));
        match api.patch(&name, &PatchParams::default(), &patch).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {
                let mut obj = DynamicObject::new(&name, &ar).within(&ns);
                obj.data = serde_json::json!({ "spec": spec });
                obj.meta_mut().labels = Some(
                    [(
                        serin_api::labels::CANARY_LABEL.to_string(),
                        canary.name_any(),
                    )]
                    .into(),
                );
                obj.meta_mut().owner_references =
                    crate::workload::owner_reference(canary).map(|o| vec![o]);
                api.create(&PostParams::default(), &obj).await?;
            }
            Err(e) => return Err(e.into()),
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
        let Some(obj) = api.get_opt(canary.spec.service_name()).await? else {
            return Ok(None);
        };
        let spec = obj.data.get("spec").cloned().unwrap_or_default();
        Ok(match self {
            Router::GatewayApi => gatewayapi::routes(canary, &spec),
            Router::Traefik => traefik::routes(canary, &spec),
            Router::Kubernetes => None,
        })
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
