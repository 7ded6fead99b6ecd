{{/*
Combinations the chart refuses with a message saying what to do, instead of rendering
something that silently does less than asked (a warning in NOTES.txt is never seen in
`helm template`, in a GitOps renderer, nor for a subchart). Included by configmap.yaml, the
one object every release renders.
*/}}

{{- define "pingmon.checks" -}}
{{- include "pingmon.checks.operator" . }}
{{- include "pingmon.checks.monitors" . }}
{{- include "pingmon.checks.native" . }}
{{- include "pingmon.checks.sharding" . }}
{{- end }}

{{/* An enabled Operator object needs monitoring.coreos.com/v1, or assumeCRDs. */}}
{{- define "pingmon.checks.operator" -}}
{{- $wanted := list }}
{{- range $name := list "serviceMonitor" "podMonitor" "prometheusRule" }}
{{- if (get $.Values $name).enabled }}
{{- $wanted = append $wanted (printf "%s.enabled" $name) }}
{{- end }}
{{- end }}
{{- if and $wanted (not (include "pingmon.operatorAPI" .)) }}
{{- fail (printf "%s: the Prometheus Operator API monitoring.coreos.com/v1 is not available to helm, so these objects cannot be rendered. Install the Operator's CRDs in the cluster, pass --api-versions monitoring.coreos.com/v1 to helm template, or set prometheusOperator.assumeCRDs=true (GitOps renderers that do not pass the cluster's API versions); or disable them" (join ", " $wanted)) }}
{{- end }}
{{- end }}

{{/* One scrape of each pingmon: both monitors would double every series and every alert. */}}
{{- define "pingmon.checks.monitors" -}}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled }}
{{- fail "serviceMonitor.enabled and podMonitor.enabled are both true: Prometheus would scrape every pingmon twice, doubling every series and every alert. Enable one: serviceMonitor (standalone) or podMonitor (sidecar, or standalone)" }}
{{- end }}
{{- end }}

{{/* A native sidecar needs Kubernetes 1.29 (SidecarContainers, on by default from 1.29). */}}
{{- define "pingmon.checks.native" -}}
{{- if and (eq .Values.mode "sidecar") (include "pingmon.sidecar.isNative" .) }}
{{- if not (semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.native: true needs Kubernetes 1.29 or later (native sidecars), but the target is %s: set sidecar.native: false for a regular container, or pass the cluster's version to helm template with --kube-version" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The chart is the one source of the sharding settings: sharding.shards and sharding.by
in sharded mode, and each pod's index (a shard in a file could not differ per pod). */}}
{{- define "pingmon.checks.sharding" -}}
{{- if hasKey .Values.config "sharding" }}
{{- fail "config.sharding is set by the chart: use mode: sharded with sharding.shards (and sharding.by); each pod then takes its shard from its pod index (docs/kubernetes.md, \"Sharding\")" }}
{{- end }}
{{- end }}
