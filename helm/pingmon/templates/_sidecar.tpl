{{/*
The sidecar contract: an application chart that depends on pingmon (with mode: sidecar)
includes these in its own pod template, passing pingmon's context, .Subcharts.pingmon:

  metadata:
    labels:
      {{- include "pingmon.sidecar.podLabels" .Subcharts.pingmon | nindent 8 }}
  spec:
    {{- with include "pingmon.sidecar.initContainers" .Subcharts.pingmon }}
    initContainers:
      {{- . | nindent 8 }}
    {{- end }}
    containers:
      - name: app
        ...
      {{- include "pingmon.sidecar.containers" .Subcharts.pingmon | nindent 8 }}
    volumes:
      {{- include "pingmon.sidecar.volumes" .Subcharts.pingmon | nindent 8 }}

pingmon.sidecar.initContainers and pingmon.sidecar.containers choose the form from
sidecar.native (auto: native from Kubernetes 1.29); exactly one of them is non-empty.
pingmon.sidecar.initContainer and pingmon.sidecar.container render one form unconditionally.
*/}}

{{/* The native sidecar: an init container that keeps running (restartPolicy: Always). */}}
{{- define "pingmon.sidecar.initContainer" -}}
- {{ include "pingmon.container" . | nindent 2 | trim }}
  restartPolicy: Always
{{- end }}

{{/* The classic sidecar: one more regular container of the pod. */}}
{{- define "pingmon.sidecar.container" -}}
- {{ include "pingmon.container" . | nindent 2 | trim }}
{{- end }}

{{- define "pingmon.sidecar.requireMode" -}}
{{- if ne .Values.mode "sidecar" }}
{{- fail "pingmon.sidecar.* templates need pingmon's mode: sidecar in the application chart's values (pingmon.mode), or pingmon also runs standalone" }}
{{- end }}
{{- end }}

{{- define "pingmon.sidecar.initContainers" -}}
{{- include "pingmon.sidecar.requireMode" . }}
{{- if include "pingmon.sidecar.isNative" . }}
{{- include "pingmon.sidecar.initContainer" . }}
{{- end }}
{{- end }}

{{- define "pingmon.sidecar.containers" -}}
{{- include "pingmon.sidecar.requireMode" . }}
{{- if not (include "pingmon.sidecar.isNative" .) }}
{{- include "pingmon.sidecar.container" . }}
{{- end }}
{{- end }}

{{- define "pingmon.sidecar.volumes" -}}
{{- include "pingmon.volumes" . }}
{{- end }}

{{- define "pingmon.sidecar.podLabels" -}}
{{- include "pingmon.sidecarLabel" . }}
{{- end }}
