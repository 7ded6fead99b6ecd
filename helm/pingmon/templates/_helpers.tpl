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
{{- end }}

{{/* The label a sidecar pod carries, so that the PodMonitor finds it. */}}
{{- define "pingmon.sidecarLabel" -}}
pingmon.io/sidecar: {{ include "pingmon.fullname" . }}
{{- end }}

{{- define "pingmon.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The port of config.listen ("0.0.0.0:9108"): container port, probes and Service use it. */}}
{{- define "pingmon.port" -}}
{{- regexFind "[0-9]+$" .Values.config.listen | int }}
{{- end }}

{{/* True (non-empty) when the Prometheus Operator objects may be rendered. */}}
{{- define "pingmon.operatorAPI" -}}
{{- if or .Values.prometheusOperator.assumeCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{/* True (non-empty) when the sidecar runs as a native sidecar (an init container). */}}
{{- define "pingmon.sidecar.isNative" -}}
{{- $native := .Values.sidecar.native }}
{{- if eq (toString $native) "auto" }}
{{- if semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- else if $native }}true{{ end }}
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
ports:
  - name: pingmon
    containerPort: {{ include "pingmon.port" . }}
    protocol: TCP
{{- with .Values.secrets.env }}
env:
  {{- range . }}
  - name: {{ .name }}
    valueFrom:
      secretKeyRef:
        name: {{ .secretName }}
        key: {{ .key }}
  {{- end }}
{{- end }}
volumeMounts:
  - name: pingmon-config
    mountPath: /etc/pingmon
    readOnly: true
  {{- range $index, $file := .Values.secrets.files }}
  - name: pingmon-secret-{{ $index }}
    mountPath: {{ $file.mountPath }}
    readOnly: true
  {{- end }}
livenessProbe:
  httpGet:
    path: /-/healthy
    port: pingmon
  {{- with .Values.livenessProbe }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
readinessProbe:
  httpGet:
    path: /-/ready
    port: pingmon
  {{- with .Values.readinessProbe }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}

{{/* The pod volumes the pingmon container mounts: its ConfigMap and the secret files. */}}
{{- define "pingmon.volumes" -}}
- name: pingmon-config
  configMap:
    name: {{ include "pingmon.fullname" . }}
{{- range $index, $file := .Values.secrets.files }}
- name: pingmon-secret-{{ $index }}
  secret:
    secretName: {{ $file.secretName }}
    {{- with $file.items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- end }}
