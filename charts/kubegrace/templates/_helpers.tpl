{{/* Names and labels, as `helm create` lays them out. */}}

{{- define "kubegrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name, truncated to the 63 characters DNS names allow. */}}
{{- define "kubegrace.fullname" -}}
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

{{- define "kubegrace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubegrace.labels" -}}
helm.sh/chart: {{ include "kubegrace.chart" . }}
{{ include "kubegrace.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kubegrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubegrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubegrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubegrace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubegrace.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end }}

{{/* Does anything scrape the management port? Then the NetworkPolicy must let it in. */}}
{{- define "kubegrace.scraped" -}}
{{- if or .Values.metrics.podMonitor.enabled .Values.metrics.serviceMonitor.enabled }}true{{ end }}
{{- end }}

{{/*
One scrape config per pod: a PodMonitor and a ServiceMonitor together would scrape every pod twice
(every series doubled, every rate summed twice). Both monitor templates call this, so whichever
Helm renders first refuses.
*/}}
{{- define "kubegrace.oneMonitor" -}}
{{- if and .Values.metrics.podMonitor.enabled .Values.metrics.serviceMonitor.enabled }}
{{- fail "metrics.podMonitor.enabled and metrics.serviceMonitor.enabled are both true: Prometheus would scrape every pod twice (each series doubled). Enable one: metrics.podMonitor (preferred: it keeps a terminating pod as a target, so the last scrape sees its shutdown; docs/metrics.md) or metrics.serviceMonitor" }}
{{- end }}
{{- end }}
