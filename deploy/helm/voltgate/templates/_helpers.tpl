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

{{- define "voltgate.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "voltgate.fullname" .)) }}
{{- end }}
