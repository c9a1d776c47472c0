{{/* Chart name, overridable. */}}
{{- define "edgewatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full resource name: release-chart, or the release name when it already holds the chart name. */}}
{{- define "edgewatch.fullname" -}}
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

{{- define "edgewatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "edgewatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgewatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "edgewatch.labels" -}}
helm.sh/chart: {{ include "edgewatch.chart" . }}
{{ include "edgewatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edgewatch
{{- end }}

{{- define "edgewatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "edgewatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "edgewatch.leaseName" -}}
{{- default (include "edgewatch.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "edgewatch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Rules the operator needs wherever it watches EdgeDeviceWatches. No wildcards. */}}
{{- define "edgewatch.watchRules" -}}
- apiGroups: ["edgewatch.dev"]
  resources: ["edgedevicewatches"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["edgewatch.dev"]
  resources: ["edgedevicewatches/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
