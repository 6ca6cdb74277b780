{{/* Names. */}}
{{- define "serin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "serin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Component names stay under 63 characters with their suffix. */}}
{{- define "serin.webhook.fullname" -}}
{{- printf "%s-webhook" (include "serin.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}
{{- define "serin.prometheus.fullname" -}}
{{- printf "%s-prometheus" (include "serin.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}
{{- define "serin.loadtester.fullname" -}}
{{- printf "%s-loadtester" (include "serin.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{- define "serin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "serin.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "serin.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Labels: pass (dict "ctx" $ "component" "controller"). */}}
{{- define "serin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "serin.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "serin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "serin.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The Prometheus the controller queries. */}}
{{- define "serin.metricsServer" -}}
{{- if .Values.prometheus.install }}
{{- printf "http://%s.%s:9090" (include "serin.prometheus.fullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.metricsServer }}
{{- end }}
{{- end }}

{{/*
The command lines, all in one place so that they follow the binaries' flags.
`serin controller`: Flagger's flags, spelled the serin way.
*/}}
{{- define "serin.controller.args" -}}
- controller
- --listen=0.0.0.0:{{ .Values.controller.port }}
- --metrics-server={{ include "serin.metricsServer" . }}
{{- with .Values.meshProvider }}
- --mesh-provider={{ . }}
{{- end }}
{{- with .Values.namespace }}
- --namespace={{ . }}
{{- end }}
{{- with .Values.selectorLabels }}
- --selector-labels={{ . }}
{{- end }}
- --log-level={{ .Values.logLevel }}
- --max-response-bytes={{ int64 .Values.controller.maxResponseBytes }}
{{- with .Values.clusterName }}
- --cluster-name={{ . }}
{{- end }}
{{- if .Values.leaderElection.enabled }}
- --leader-election
{{- end }}
{{- with .Values.slack.channel }}
- --slack-channel={{ . }}
{{- end }}
{{- with .Values.slack.user }}
- --slack-user={{ . }}
{{- end }}
{{- range .Values.controller.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* Secrets reach the controller as SERIN_* variables, which mirror --slack-url and --msteams-url. */}}
{{- define "serin.controller.env" -}}
- name: SERIN_POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: SERIN_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if .Values.slack.url }}
- name: SERIN_SLACK_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "serin.fullname" . }}-alerts
      key: slack-url
{{- end }}
{{- if .Values.msteams.url }}
- name: SERIN_MSTEAMS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "serin.fullname" . }}-alerts
      key: msteams-url
{{- end }}
{{- with .Values.controller.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* `serin webhook`: self-signed (patches the caBundle itself) or files from cert-manager. */}}
{{- define "serin.webhook.args" -}}
- webhook
- --port={{ .Values.webhook.port }}
{{- if .Values.webhook.certManager.enabled }}
- --tls-cert-file=/tls/tls.crt
- --tls-key-file=/tls/tls.key
{{- else }}
- --self-signed
- --service={{ include "serin.webhook.fullname" . }}.{{ .Release.Namespace }}
- --webhook-config-name={{ include "serin.webhook.fullname" . }}
{{- end }}
{{- with .Values.namespace }}
- --namespace={{ . }}
{{- end }}
- --log-level={{ .Values.logLevel }}
{{- range .Values.webhook.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* `serin loadtester`: Flagger's loadtester API on --port. */}}
{{- define "serin.loadtester.args" -}}
- loadtester
- --port={{ .Values.loadtester.port }}
{{- with .Values.loadtester.namespaceRegexp }}
- --namespace-regexp={{ . }}
{{- end }}
- --timeout={{ .Values.loadtester.timeout }}
{{- range .Values.loadtester.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The certificate's Secret (cert-manager mode). */}}
{{- define "serin.webhook.tlsSecret" -}}
{{- printf "%s-tls" (include "serin.webhook.fullname" .) }}
{{- end }}

{{/* Webhook configurations are restricted to the watched namespace in namespaced mode. */}}
{{- define "serin.webhook.namespaceSelector" -}}
{{- if .Values.namespace }}
namespaceSelector:
  matchLabels:
    kubernetes.io/metadata.name: {{ .Values.namespace }}
{{- end }}
{{- end }}

{{- define "serin.webhook.caInjection" -}}
{{- if .Values.webhook.certManager.enabled }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "serin.webhook.fullname" . }}
{{- end }}
{{- end }}
