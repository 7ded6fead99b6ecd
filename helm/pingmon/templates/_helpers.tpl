{{/*
Names, labels and the pingmon container, shared by the standalone Deployment and the sidecar
templates. Every template here takes the pingmon chart's own context (. in this chart,
.Subcharts.pingmon in a parent chart), so both modes render the same container.
*/}}

{{- define "pingmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pingmon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "pingmon.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pingmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pingmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pingmon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pingmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The label a sidecar pod carries, so that the PodMonitor finds it. */}}
{{- define "pingmon.sidecarLabel" -}}
pingmon.io/sidecar: {{ include "pingmon.fullname" . }}
{{- end }}

{{/* [registry/]repository:tag or @digest; global.imageRegistry (a parent chart's mirror)
wins over image.registry. */}}
{{- define "pingmon.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- $registry := default .Values.image.registry ((.Values.global).imageRegistry) }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the standalone pods run as. */}}
{{- define "pingmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pingmon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* True (non-empty) when Secret references may be missing: sidecar mode, by default. */}}
{{- define "pingmon.secrets.optional" -}}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.optionalSecrets }}true{{ end }}
{{- end }}

{{/* The port of config.listen ("0.0.0.0:9108"): container port, probes and Service use it. */}}
{{- define "pingmon.port" -}}
{{- regexFind "[0-9]+$" .Values.config.listen | int }}
{{- end }}

{{/* The webhook receiver's route prefix on the Ingress: <pathPrefix>/webhooks. */}}
{{- define "pingmon.webhooks.path" -}}
{{- printf "%s/webhooks" .Values.webhooks.pathPrefix }}
{{- end }}

{{/*
The pingmon.yaml the ConfigMap carries: values.config, plus webhook_listen (the host of
config.listen, the port webhooks.port) and webhook_path_prefix when webhooks are enabled.
*/}}
{{- define "pingmon.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.webhooks.enabled }}
{{- $host := regexReplaceAll ":[0-9]+$" .Values.config.listen "" }}
{{- $_ := set $config "webhook_listen" (printf "%s:%d" $host (int .Values.webhooks.port)) }}
{{- $_ := set $config "webhook_path_prefix" .Values.webhooks.pathPrefix }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Webhook round trips need one receiver per target: the pod that pinged must be the pod the
provider's webhook reaches. Refuse what would break that, saying what to do instead.
*/}}
{{- define "pingmon.webhooks.check" -}}
{{- $webhookTargets := list }}
{{- range $index, $target := (.Values.config.targets | default list) }}
{{- if and (kindIs "map" $target) (hasKey $target "webhook") }}
{{- $webhookTargets = append $webhookTargets (printf "config.targets[%d] (%v)" $index (get $target "name")) }}
{{- end }}
{{- end }}
{{- $docs := "see docs/webhooks.md, \"One receiver per target\"" }}
{{- if and (eq .Values.mode "sidecar") (or .Values.webhooks.enabled $webhookTargets) }}
{{- $what := join ", " $webhookTargets | default "webhooks.enabled" }}
{{- fail (printf "%s: webhooks need mode: standalone. In sidecar mode every replica of the application runs a pingmon that pings, but the provider's webhook reaches only one of them; run the targets with webhook: in a standalone pingmon release (webhooks.enabled: true, replicaCount: 1) instead (%s)" $what $docs) }}
{{- end }}
{{- if and (eq .Values.mode "sharded") (or .Values.webhooks.enabled $webhookTargets) }}
{{- $what := join ", " $webhookTargets | default "webhooks.enabled" }}
{{- fail (printf "%s: webhooks need mode: standalone. In sharded mode each target is pinged by the one pod of its shard, but the provider's webhook would reach whichever pod the Service or Ingress picks; run the targets with webhook: in a standalone pingmon release (webhooks.enabled: true, replicaCount: 1) next to the sharded one (%s)" $what $docs) }}
{{- end }}
{{- if and $webhookTargets (not .Values.webhooks.enabled) }}
{{- fail (printf "%s: webhook: needs webhooks.enabled: true, so that the chart serves the receiver on the webhooks port (docs/webhooks.md)" (join ", " $webhookTargets)) }}
{{- end }}
{{- if .Values.webhooks.enabled }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "webhooks.enabled needs replicaCount: 1 (got %d): every replica pings, but each webhook reaches only one pod, so the others would count their pings' webhooks as missed (%s)" (int .Values.replicaCount) $docs) }}
{{- end }}
{{- if eq (int .Values.webhooks.port) (int (include "pingmon.port" .)) }}
{{- fail (printf "webhooks.port (%d) must differ from the port of config.listen: the receiver gets a port of its own, so that an Ingress to it never exposes /metrics" (int .Values.webhooks.port)) }}
{{- end }}
{{- range $key := list "webhook_listen" "webhook_path_prefix" }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is set by the chart when webhooks.enabled: set webhooks.port and webhooks.pathPrefix instead" $key) }}
{{- end }}
{{- end }}
{{- else if .Values.webhooks.ingress.enabled }}
{{- fail "webhooks.ingress.enabled needs webhooks.enabled: true (the Ingress routes to the receiver's port)" }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the Prometheus Operator objects may be rendered. */}}
{{- define "pingmon.operatorAPI" -}}
{{- if or .Values.prometheusOperator.assumeCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{/* True (non-empty) when the sidecar runs as a native sidecar (an init container). */}}
{{- define "pingmon.sidecar.isNative" -}}
{{- if .Values.sidecar.native }}true{{ end }}
{{- end }}

{{/* The pingmon container, without a list dash. */}}
{{- define "pingmon.container" -}}
name: pingmon
image: {{ include "pingmon.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  - --log-format={{ .Values.logFormat }}
  - --log-level={{ .Values.logLevel }}
  - run
  - --config=/etc/pingmon/pingmon.yaml
  {{- with (include "pingmon.web.facts" . | fromYaml).file }}
  - --web.config.file={{ . }}
  {{- end }}
  {{- if .Values.web.enableLifecycle }}
  - --web.enable-lifecycle
  {{- end }}
ports:
  - name: pingmon
    containerPort: {{ include "pingmon.port" . }}
    protocol: TCP
  {{- if .Values.webhooks.enabled }}
  - name: webhooks
    containerPort: {{ .Values.webhooks.port }}
    protocol: TCP
  {{- end }}
{{- $sharded := eq .Values.mode "sharded" }}
{{- if or .Values.secrets.env .Values.extraEnv $sharded }}
env:
  {{- $optional := include "pingmon.secrets.optional" . }}
  {{- range .Values.secrets.env }}
  - name: {{ .name }}
    valueFrom:
      secretKeyRef:
        name: {{ .secretName }}
        key: {{ .key }}
        {{- if $optional }}
        optional: true
        {{- end }}
  {{- end }}
  {{- if $sharded }}
  {{- include "pingmon.sharding.env" . | nindent 2 }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
volumeMounts:
  - name: pingmon-config
    mountPath: /etc/pingmon
    readOnly: true
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- range $index, $file := .Values.secrets.files }}
  - name: pingmon-secret-{{ $index }}
    mountPath: {{ $file.mountPath }}
    readOnly: true
  {{- end }}
  {{- if .Values.web.configSecret.name }}
  - name: pingmon-web-config
    mountPath: {{ include "pingmon.web.secretDir" . }}
    readOnly: true
  {{- end }}
  {{- if .Values.web.tls.secretName }}
  - name: pingmon-tls
    mountPath: {{ include "pingmon.web.tlsDir" . }}
    readOnly: true
  {{- end }}
livenessProbe:
  {{- include "pingmon.web.probe" (dict "context" . "path" "/-/healthy") | trim | nindent 2 }}
  {{- with .Values.livenessProbe }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
readinessProbe:
  {{- include "pingmon.web.probe" (dict "context" . "path" "/-/ready") | trim | nindent 2 }}
  {{- with .Values.readinessProbe }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}

{{/* The pod volumes the pingmon container mounts: its ConfigMap, the secret files, and the
web configuration's Secret and TLS Secret when set. Mounted whole (never with subPath), so
that a renewed certificate reaches the running pod. */}}
{{- define "pingmon.volumes" -}}
- name: pingmon-config
  configMap:
    name: {{ include "pingmon.fullname" . }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- $optional := include "pingmon.secrets.optional" . }}
{{- range $index, $file := .Values.secrets.files }}
- name: pingmon-secret-{{ $index }}
  secret:
    secretName: {{ $file.secretName }}
    {{- if $optional }}
    optional: true
    {{- end }}
    {{- with $file.items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- with .Values.web.configSecret.name }}
- name: pingmon-web-config
  secret:
    secretName: {{ . }}
    items:
      - {key: web.yml, path: web.yml}
{{- end }}
{{- with .Values.web.tls.secretName }}
- name: pingmon-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{/*
Sharded mode: the settings pingmon's sharding: section takes, as its PINGMON_SHARDING__*
overrides (the only source: the chart refuses config.sharding). SHARD is the pod's index,
from the apps.kubernetes.io/pod-index label (Kubernetes 1.28+) or from the pod's name,
<fullname>-<ordinal>, which pingmon also accepts.
*/}}
{{- define "pingmon.sharding.env" -}}
- name: PINGMON_SHARDING__SHARDS
  value: {{ .Values.sharding.shards | int | toString | quote }}
- name: PINGMON_SHARDING__SHARD
  valueFrom:
    fieldRef:
      {{- if include "pingmon.sharding.fromPodIndex" . }}
      fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
      {{- else }}
      fieldPath: metadata.name
      {{- end }}
- name: PINGMON_SHARDING__BY
  value: {{ .Values.sharding.by | quote }}
{{- end }}

{{/* True (non-empty) when a shard takes its index from the pod-index label: ordinalFrom
podIndexLabel, or auto on Kubernetes 1.28 or later (the version helm renders for). */}}
{{- define "pingmon.sharding.fromPodIndex" -}}
{{- $from := .Values.sharding.ordinalFrom }}
{{- if eq $from "podIndexLabel" }}true
{{- else if and (eq $from "auto") (semverCompare ">=1.28.0-0" .Capabilities.KubeVersion.Version) }}true
{{- end }}
{{- end }}
