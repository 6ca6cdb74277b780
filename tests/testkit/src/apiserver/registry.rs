//! The kinds the server knows: built-ins, plus every version of every CustomResourceDefinition applied to it.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One column of a `Table` response (`kubectl get`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// One served group/version/resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub status: bool,
    pub scale: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub columns: Vec<PrinterColumn>,
    /// Name of the CRD that defined it; `None` for built-ins.
    pub crd: Option<String>,
    /// The version's `openAPIV3Schema` (CRDs only): objects are pruned and validated against it.
    pub schema: Option<Arc<Value>>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `deployments.apps`, the name Kubernetes uses in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Registry {
    types: BTreeMap<(String, String, String), ResourceType>,
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        status,
        scale: false,
        short_names: vec![],
        categories: vec![],
        columns: vec![],
        crd: None,
        schema: None,
    }
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        let mut add = |mut t: ResourceType, short: &[&str], scale: bool| {
            t.short_names = short.iter().map(|s| s.to_string()).collect();
            t.scale = scale;
            if [
                "deployments",
                "daemonsets",
                "statefulsets",
                "replicasets",
                "pods",
                "services",
            ]
            .contains(&t.plural.as_str())
            {
                t.categories = vec!["all".into()];
            }
            r.insert(t);
        };
        add(
            builtin("", "v1", "namespaces", "Namespace", false, true),
            &["ns"],
            false,
        );
        add(
            builtin("", "v1", "services", "Service", true, true),
            &["svc"],
            false,
        );
        add(
            builtin("", "v1", "configmaps", "ConfigMap", true, false),
            &["cm"],
            false,
        );
        add(
            builtin("", "v1", "secrets", "Secret", true, false),
            &[],
            false,
        );
        add(
            builtin("", "v1", "events", "Event", true, false),
            &["ev"],
            false,
        );
        add(builtin("", "v1", "pods", "Pod", true, true), &["po"], false);
        add(
            builtin("", "v1", "serviceaccounts", "ServiceAccount", true, false),
            &["sa"],
            false,
        );
        add(
            builtin("", "v1", "endpoints", "Endpoints", true, false),
            &["ep"],
            false,
        );
        add(
            builtin("apps", "v1", "deployments", "Deployment", true, true),
            &["deploy"],
            true,
        );
        add(
            builtin("apps", "v1", "daemonsets", "DaemonSet", true, true),
            &["ds"],
            false,
        );
        add(
            builtin("apps", "v1", "statefulsets", "StatefulSet", true, true),
            &["sts"],
            true,
        );
        add(
            builtin("apps", "v1", "replicasets", "ReplicaSet", true, true),
            &["rs"],
            true,
        );
        add(
            builtin(
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                true,
                true,
            ),
            &["hpa"],
            false,
        );
        add(
            builtin("events.k8s.io", "v1", "events", "Event", true, false),
            &["ev"],
            false,
        );
        add(
            builtin("coordination.k8s.io", "v1", "leases", "Lease", true, false),
            &[],
            false,
        );
        add(
            builtin(
                "admissionregistration.k8s.io",
                "v1",
                "mutatingwebhookconfigurations",
                "MutatingWebhookConfiguration",
                false,
                false,
            ),
            &[],
            false,
        );
        add(
            builtin(
                "admissionregistration.k8s.io",
                "v1",
                "validatingwebhookconfigurations",
                "ValidatingWebhookConfiguration",
                false,
                false,
            ),
            &[],
            false,
        );
        add(
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                true,
            ),
            &["crd", "crds"],
            false,
        );
        add(
            builtin(
                "networking.k8s.io",
                "v1",
                "ingresses",
                "Ingress",
                true,
                true,
            ),
            &["ing"],
            false,
        );
        r
    }

    fn insert(&mut self, t: ResourceType) {
        self.types
            .insert((t.group.clone(), t.version.clone(), t.plural.clone()), t);
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Any served version of a group/resource (storage is shared across versions).
    pub fn any_version(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .values()
            .find(|t| t.group == group && t.plural == plural)
    }

    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .values()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// Groups in registration order is not needed by clients; sorted with the legacy groups first is.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.values().filter(|t| !t.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
                Some(_) => {}
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// Registers every served version of a CRD; replaces what an earlier version of the same CRD registered.
    pub fn register_crd(&mut self, crd: &Value) -> Result<(), String> {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let spec = crd.get("spec").ok_or("spec: Required value")?;
        let group = spec
            .get("group")
            .and_then(Value::as_str)
            .ok_or("spec.group: Required value")?;
        let names = spec.get("names").ok_or("spec.names: Required value")?;
        let plural = names
            .get("plural")
            .and_then(Value::as_str)
            .ok_or("spec.names.plural: Required value")?;
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("spec.names.kind: Required value")?;
        let singular = names
            .get("singular")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase());
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let short_names = strings(names.get("shortNames"));
        let categories = strings(names.get("categories"));
        let namespaced = match spec.get("scope").and_then(Value::as_str) {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            other => {
                return Err(format!(
                    "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
                ));
            }
        };
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .ok_or("spec.versions: Required value")?;
        if versions.is_empty() {
            return Err("spec.versions: Invalid value: must have exactly one version marked as storage version".into());
        }
        if !plural
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || plural.is_empty()
        {
            return Err(format!(
                "spec.names.plural: Invalid value: {plural:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
            ));
        }
        if name != format!("{plural}.{group}") {
            return Err(format!(
                "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
            ));
        }
        self.unregister_crd(&name);
        for v in versions {
            let vname = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or("spec.versions[].name: Required value")?;
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let sub = v.get("subresources");
            let columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: c
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                            type_: c
                                .get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("string")
                                .into(),
                            format: c
                                .get("format")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                            description: c
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            json_path: c
                                .get("jsonPath")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.insert(ResourceType {
                group: group.into(),
                version: vname.into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced,
                status: sub.and_then(|s| s.get("status")).is_some(),
                scale: sub.and_then(|s| s.get("scale")).is_some(),
                short_names: short_names.clone(),
                categories: categories.clone(),
                columns,
                crd: Some(name.clone()),
                schema: v
                    .pointer("/schema/openAPIV3Schema")
                    .filter(|s| s.is_object())
                    .map(|s| Arc::new(s.clone())),
            });
        }
        Ok(())
    }

    pub fn unregister_crd(&mut self, name: &str) {
        self.types.retain(|_, t| t.crd.as_deref() != Some(name));
    }
}
