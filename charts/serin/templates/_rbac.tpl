{{/*
The router objects each provider writes (reference: Flagger's routers). A provider is granted
only when it is meshProvider (empty means the controller's default, kubernetes) or listed in
rbac.extraProviders, since a Canary's spec.provider can name another router.
*/}}
{{- define "serin.routerRules" -}}
{{- $providers := list (default "kubernetes" .Values.meshProvider) }}
{{- range .Values.rbac.extraProviders }}
{{- $providers = append $providers . }}
{{- end }}
{{- $groups := dict }}
{{- range $providers }}
{{- $kind := first (splitList ":" .) }}
{{- if eq $kind "istio" }}
{{- $_ := set $groups "networking.istio.io" (list "virtualservices" "destinationrules") }}
{{- else if eq $kind "gatewayapi" }}
{{- $_ := set $groups "gateway.networking.k8s.io" (list "httproutes") }}
{{- else if or (eq $kind "linkerd") (eq $kind "smi") (eq $kind "osm") }}
{{- $_ := set $groups "split.smi-spec.io" (list "trafficsplits") }}
{{- else if eq $kind "nginx" }}
{{- $_ := set $groups "networking.k8s.io" (list "ingresses") }}
{{- else if eq $kind "traefik" }}
{{- $_ := set $groups "traefik.io" (list "traefikservices") }}
{{- else if eq $kind "contour" }}
{{- $_ := set $groups "projectcontour.io" (list "httpproxies") }}
{{- else if ne $kind "kubernetes" }}
{{- fail (printf "meshProvider/rbac.extraProviders: unknown provider %q; use one of kubernetes, gatewayapi, gatewayapi:v1, gatewayapi:v1beta1, istio, linkerd, smi, smi:v1alpha2, smi:v1alpha3, osm, nginx, traefik, contour" .) }}
{{- end }}
{{- end }}
{{- range $group := keys $groups | sortAlpha }}
- apiGroups: [{{ $group | quote }}]
  resources: {{ get $groups $group | toJson }}
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}
{{- end }}

{{/* What the controller needs in the namespaces it watches. */}}
{{- define "serin.controllerRules" -}}
- apiGroups: ["flagger.app"]
  resources: ["canaries"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["flagger.app"]
  resources: ["canaries/status"]
  verbs: ["get", "update", "patch"]
# Owner references with blockOwnerDeletion on the canary's objects need this.
- apiGroups: ["flagger.app"]
  resources: ["canaries/finalizers"]
  verbs: ["update"]
- apiGroups: ["flagger.app"]
  resources: ["metrictemplates", "alertproviders"]
  verbs: ["get", "list", "watch"]
# web is adopted, held and promoted; web-canary is created and scaled (of the target's kind).
- apiGroups: ["apps"]
  resources: ["deployments", "daemonsets", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The apex, -primary and -canary Services.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Credentials of metric providers and alert providers (secretRef).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- include "serin.routerRules" . }}
{{- end }}
