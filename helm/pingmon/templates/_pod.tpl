{{/*
The pod template of the pods this chart runs itself: the standalone Deployment's and the
sharded StatefulSet's. One definition, so both modes get the same ConfigMap, Secrets,
security context, web configuration, probes and resources.
*/}}

{{- define "pingmon.podTemplate" -}}
metadata:
  labels:
    {{- include "pingmon.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or .Values.podAnnotations .Values.restartOnConfigChange .Values.webhooks.enabled }}
  annotations:
    {{- if .Values.restartOnConfigChange }}
    checksum/config: {{ include "pingmon.config" . | sha256sum }}
    {{- end }}
    {{- if .Values.webhooks.enabled }}
    # pingmon reads webhook_path_prefix at start only: a new prefix replaces the pod.
    pingmon.io/webhook-path-prefix: {{ .Values.webhooks.pathPrefix | quote }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "pingmon.serviceAccountName" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - {{ include "pingmon.container" . | nindent 6 | trim }}
  volumes:
    {{- include "pingmon.volumes" . | nindent 4 }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
