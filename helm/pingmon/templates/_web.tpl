{{/*
pingmon's own server: the web configuration (--web.config.file, exporter-toolkit's
web-config.yml), its TLS Secret, and what follows from them for the probes and the
ServiceMonitor/PodMonitor. README "Securing pingmon" and docs/kubernetes.md explain the values.
*/}}

{{- define "pingmon.web.tlsDir" -}}/var/run/secrets/pingmon/tls{{- end }}
{{- define "pingmon.web.secretDir" -}}/var/run/secrets/pingmon/web{{- end }}

{{/*
The inline web configuration (web.config), with tls_server_config's files defaulting to the
TLS Secret's tls.crt, tls.key (and ca.crt when client certificates are verified).
*/}}
{{- define "pingmon.web.inline" -}}
{{- $web := deepCopy (.Values.web.config | default dict) }}
{{- if .Values.web.tls.secretName }}
{{- $dir := include "pingmon.web.tlsDir" . }}
{{- $tls := get $web "tls_server_config" | default dict }}
{{- $_ := set $tls "cert_file" ($tls.cert_file | default (printf "%s/tls.crt" $dir)) }}
{{- $_ := set $tls "key_file" ($tls.key_file | default (printf "%s/tls.key" $dir)) }}
{{- if has ($tls.client_auth_type | default "") (list "RequireAndVerifyClientCert" "VerifyClientCertIfGiven") }}
{{- $_ := set $tls "client_ca_file" ($tls.client_ca_file | default (printf "%s/ca.crt" $dir)) }}
{{- end }}
{{- $_ := set $web "tls_server_config" $tls }}
{{- end }}
{{- if $web }}{{ toYaml $web }}{{ end }}
{{- end }}

{{/*
What the web configuration turns on, as YAML: file (the --web.config.file path, "" for none),
tls, basicAuth, clientCertificates (required: a probe cannot present one) and exemptPaths.
Read from web.config, or from web.configSecret's statements about the Secret it names.
*/}}
{{- define "pingmon.web.facts" -}}
{{- $secret := .Values.web.configSecret }}
{{- if $secret.name }}
{{- if .Values.web.config }}
{{- fail "web.config and web.configSecret.name are exclusive: write the web configuration inline or in a Secret, not both" }}
{{- end }}
file: {{ printf "%s/web.yml" (include "pingmon.web.secretDir" .) }}
tls: {{ or $secret.tls (not (empty .Values.web.tls.secretName)) }}
basicAuth: {{ $secret.basicAuth }}
clientCertificates: {{ $secret.clientCertificates }}
exemptPaths: {{ $secret.exemptPaths | default list | toJson }}
{{- else }}
{{- $web := include "pingmon.web.inline" . | fromYaml }}
{{- $tls := get $web "tls_server_config" | default dict }}
file: {{ ternary "/etc/pingmon/web.yml" "" (not (empty $web)) }}
tls: {{ not (empty $tls) }}
basicAuth: {{ not (empty (get $web "basic_auth_users")) }}
clientCertificates: {{ eq ($tls.client_auth_type | default "") "RequireAndVerifyClientCert" }}
exemptPaths: {{ (get (get $web "pingmon" | default dict) "basic_auth_exempt_paths") | default list | toJson }}
{{- end }}
{{- end }}

{{/*
A probe of this path: an HTTP(S) GET when the web configuration lets a kubelet through (no
client certificate required; no basic auth, or the path exempted), else a TCP connect.
*/}}
{{- define "pingmon.web.probe" -}}
{{- $facts := include "pingmon.web.facts" .context | fromYaml }}
{{- if or $facts.clientCertificates (and $facts.basicAuth (not (has .path $facts.exemptPaths))) }}
tcpSocket:
  port: pingmon
{{- else }}
httpGet:
  path: {{ .path }}
  port: pingmon
  {{- if $facts.tls }}
  scheme: HTTPS
  {{- end }}
{{- end }}
{{- end }}

{{/* The scheme, tlsConfig and basicAuth of a ServiceMonitor endpoint or PodMonitor's. */}}
{{- define "pingmon.web.scrape" -}}
{{- $facts := include "pingmon.web.facts" . | fromYaml }}
{{- $scrape := .Values.web.scrape }}
{{- if and $facts.basicAuth (empty $scrape.basicAuth) }}
{{- fail "the web configuration has basic_auth_users: set web.scrape.basicAuth (username and password Secret key references) so that Prometheus can scrape pingmon" }}
{{- end }}
{{- if and $facts.clientCertificates (or (empty $scrape.tlsConfig.cert) (empty $scrape.tlsConfig.keySecret)) }}
{{- fail "the web configuration requires client certificates: set web.scrape.tlsConfig.cert and keySecret so that Prometheus presents one" }}
{{- end }}
{{- if $facts.tls }}
scheme: https
{{- with $scrape.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- if $facts.basicAuth }}
basicAuth:
  {{- toYaml $scrape.basicAuth | nindent 2 }}
{{- end }}
{{- end }}
