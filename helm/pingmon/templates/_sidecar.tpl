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
sidecar.native (false, the default: a regular container; true: native, Kubernetes >= 1.29);
exactly one of them is non-empty. pingmon.sidecar.initContainer and pingmon.sidecar.container
render one form unconditionally.

A monitor never takes the application down: the sidecar has no readiness probe unless
sidecar.readinessProbe (a pod is Ready only when all its containers are), its Secret
references are optional (sidecar.optionalSecrets), and it starts on a refused configuration
with no targets instead of crash-looping (sidecar.allowInvalidConfig: pingmon run
--config.allow-invalid-at-start; the failure shows as pingmon_config_last_reload_successful 0).
*/}}

{{/* The pingmon container as the sidecar runs it, without a list dash. */}}
{{- define "pingmon.sidecar.spec" -}}
{{- $container := include "pingmon.container" . | fromYaml }}
{{- if not .Values.sidecar.readinessProbe }}
{{- $_ := unset $container "readinessProbe" }}
{{- end }}
{{- if .Values.sidecar.allowInvalidConfig }}
{{- $_ := set $container "args" (append $container.args "--config.allow-invalid-at-start") }}
{{- end }}
{{- toYaml $container }}
{{- end }}

{{/* The native sidecar: an init container that keeps running (restartPolicy: Always). */}}
{{- define "pingmon.sidecar.initContainer" -}}
- {{ include "pingmon.sidecar.spec" . | nindent 2 | trim }}
  restartPolicy: Always
{{- end }}

{{/* The classic sidecar: one more regular container of the pod. */}}
{{- define "pingmon.sidecar.container" -}}
- {{ include "pingmon.sidecar.spec" . | nindent 2 | trim }}
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
