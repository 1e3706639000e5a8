{{/*
Names and labels shared by every template of the chart.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "voltgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release-qualified name of every object, cut to the 63 characters Kubernetes allows.
*/}}
{{- define "voltgate.fullname" -}}
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

{{- define "voltgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "voltgate.labels" -}}
helm.sh/chart: {{ include "voltgate.chart" . }}
{{ include "voltgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "voltgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voltgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "voltgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voltgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret that holds the admin token: the user's own, or the chart's. */}}
{{- define "voltgate.adminTokenSecret" -}}
{{- .Values.adminToken.existingSecret | default (include "voltgate.fullname" .) }}
{{- end }}

{{/* PostgreSQL instead of the SQLite file: no volume, and several pods may run. */}}
{{- define "voltgate.externalDatabase" -}}
{{- if .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{- define "voltgate.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "voltgate.fullname" .)) }}
{{- end }}

{{/* The Service chargers connect to keeps the release's name; the API one adds "-api". */}}
{{- define "voltgate.apiServiceName" -}}
{{- printf "%s-api" (include "voltgate.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{- define "voltgate.presetsConfigMap" -}}
{{- .Values.presets.existingConfigMap | default (printf "%s-presets" (include "voltgate.fullname" . | trunc 55 | trimSuffix "-")) }}
{{- end }}

{{/* Where the gateway finds its files in the pod. */}}
{{- define "voltgate.presetsDir" -}}/etc/voltgate/presets{{- end }}
{{- define "voltgate.tlsDir" -}}/etc/voltgate/tls{{- end }}
{{- define "voltgate.clientCADir" -}}/etc/voltgate/client-ca{{- end }}
{{- define "voltgate.apiTlsDir" -}}/etc/voltgate/api-tls{{- end }}

{{/*
Stops the install on values that would deploy something other than what they say: the keys of
the single Service of chart 0.1, TLS without its certificates, several pods on SQLite, and a
grace period shorter than the drain.
*/}}
{{- define "voltgate.checkValues" -}}
{{- range $old, $new := dict "type" "service.ocpp.type" "ocppPort" "service.ocpp.port" "apiPort" "service.api.port" "annotations" "service.ocpp.annotations" "externalTrafficPolicy" "service.ocpp.externalTrafficPolicy" }}
{{- if hasKey $.Values.service $old }}
{{- fail (printf "service.%s is now %s: chargers and the operator API have separate Services (see deploy/README.md)" $old $new) }}
{{- end }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $_ := required "tls.enabled needs tls.existingSecret, a kubernetes.io/tls Secret with the server certificate" .Values.tls.existingSecret }}
{{- end }}
{{- if and .Values.tls.clientCA.existingSecret .Values.tls.clientCA.existingConfigMap }}
{{- fail "tls.clientCA: set existingSecret or existingConfigMap, not both" }}
{{- end }}
{{- if and (or .Values.tls.clientCA.existingSecret .Values.tls.clientCA.existingConfigMap) (not .Values.tls.enabled) }}
{{- fail "tls.clientCA is used by the charger TLS listener: set tls.enabled too" }}
{{- end }}
{{- if .Values.tls.api.enabled }}
{{- $_ := required "tls.api.enabled needs tls.api.existingSecret, a kubernetes.io/tls Secret with the API certificate" .Values.tls.api.existingSecret }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.database.existingSecret) }}
{{- fail "replicaCount above 1 needs PostgreSQL (database.existingSecret): the embedded SQLite database is one file with one writer" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.cluster.nats) }}
{{- fail "replicaCount above 1 needs cluster.nats: the nodes find each other and pass commands and changes through NATS" }}
{{- end }}
{{- if and .Values.cluster.nats (not .Values.database.existingSecret) }}
{{- fail "cluster.nats needs database.existingSecret: every node must share one PostgreSQL database" }}
{{- end }}
{{- if not (gt (int .Values.terminationGracePeriodSeconds) (int .Values.config.shutdownTimeoutSeconds)) }}
{{- fail "terminationGracePeriodSeconds must be above config.shutdownTimeoutSeconds, or Kubernetes kills the pod in the middle of its drain" }}
{{- end }}
{{- if and .Values.presets.files .Values.presets.existingConfigMap }}
{{- fail "presets: set files or existingConfigMap, not both" }}
{{- end }}
{{- $dir := printf "%s/" (include "voltgate.presetsDir" .) }}
{{- if hasPrefix $dir .Values.config.preset }}
{{- if not (or .Values.presets.files .Values.presets.existingConfigMap) }}
{{- fail (printf "config.preset is %s, but no presets are mounted: set presets.files or presets.existingConfigMap" .Values.config.preset) }}
{{- end }}
{{- if and .Values.presets.files (not (hasKey .Values.presets.files (trimPrefix $dir .Values.config.preset))) }}
{{- fail (printf "config.preset is %s, but presets.files has no %s" .Values.config.preset (trimPrefix $dir .Values.config.preset)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A probe of the API port, over HTTPS when the API serves it: (list probe root). */}}
{{- define "voltgate.probe" -}}
{{- $probe := index . 0 }}
{{- $root := index . 1 }}
{{- if $root.Values.tls.api.enabled }}
{{- $probe = mergeOverwrite (deepCopy $probe) (dict "httpGet" (dict "scheme" "HTTPS")) }}
{{- end }}
{{- toYaml $probe }}
{{- end }}
