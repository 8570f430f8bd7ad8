{{/*
kubegrace-lib.env: the container's KUBEGRACE_* variables, computed from the same budget as
terminationGracePeriodSeconds, then the Downward API variables (kubegrace.downwardApi, default on).
List items without the `env:` key:

  env:
    {{- include "kubegrace-lib.env" . | nindent 4 }}
*/}}
{{- define "kubegrace-lib.env" -}}
{{- $budget := include "kubegrace-lib.budget" . | fromYaml -}}
{{- $s := $budget.settings -}}
{{- $c := include "kubegrace-lib.config" . | fromYaml -}}
- name: KUBEGRACE_GRACE_PERIOD_SECONDS
  value: {{ int64 $budget.graceSeconds | quote }}
- name: KUBEGRACE_PRE_STOP_SLEEP_SECONDS
  value: {{ int64 $budget.preStop.sleepSeconds | quote }}
- name: KUBEGRACE_UNREADY_TIMEOUT_MS
  value: {{ int64 $s.unreadyTimeoutMs | quote }}
- name: KUBEGRACE_PROPAGATION_STRATEGY
  value: {{ $s.propagation.strategy | quote }}
- name: KUBEGRACE_PROPAGATION_DELAY_MS
  value: {{ int64 $s.propagation.delayMs | quote }}
- name: KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS
  value: {{ int64 $s.propagation.quietPeriodMs | quote }}
- name: KUBEGRACE_PROPAGATION_MIN_MS
  value: {{ int64 $s.propagation.minMs | quote }}
- name: KUBEGRACE_PROPAGATION_MAX_MS
  value: {{ int64 $s.propagation.maxMs | quote }}
- name: KUBEGRACE_DRAIN_TIMEOUT_MS
  value: {{ int64 $s.drainTimeoutMs | quote }}
- name: KUBEGRACE_DRAIN_PACING_WINDOW_MS
  value: {{ int64 $s.drainPacingWindowMs | quote }}
- name: KUBEGRACE_CLEANUP_TIMEOUT_MS
  value: {{ int64 $s.cleanupTimeoutMs | quote }}
- name: KUBEGRACE_SAFETY_MARGIN_MS
  value: {{ int64 $s.safetyMarginMs | quote }}
- name: KUBEGRACE_PROBES_PORT
  value: {{ int64 $s.probesPort | quote }}
- name: KUBEGRACE_PROBES_READINESS_UNTIL
  value: {{ $s.readinessUntil | quote }}
- name: KUBEGRACE_BUDGET_CHECK
  value: {{ $s.budgetCheck | quote }}
{{- if $c.downwardApi }}
{{ include "kubegrace-lib.downwardApiEnv" . }}
{{- end }}
{{- end -}}

{{/*
kubegrace-lib.envNames: the names kubegrace-lib.env sets, one per line; a chart can refuse extra
env that would shadow them.
*/}}
{{- define "kubegrace-lib.envNames" -}}
{{- range (include "kubegrace-lib.env" . | fromYamlArray) }}
{{ .name }}
{{- end }}
{{- end -}}

{{/*
kubegrace-lib.downwardApiEnv: POD_NAME, POD_NAMESPACE, POD_UID, POD_IP — how kubegrace finds its
own pod and recognises its endpoints (docs/kubernetes.md).
*/}}
{{- define "kubegrace-lib.downwardApiEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end -}}

{{/*
kubegrace-lib.ports: the management port as a container port named `management`, where the probes
(and `/metrics`, with kubegrace/metrics) are served.
  ports:
    {{- include "kubegrace-lib.ports" . | nindent 4 }}
*/}}
{{- define "kubegrace-lib.ports" -}}
{{- $budget := include "kubegrace-lib.budget" . | fromYaml -}}
- name: management
  containerPort: {{ int64 $budget.settings.probesPort }}
  protocol: TCP
{{- end -}}

{{/*
kubegrace-lib.probes: readinessProbe, livenessProbe and startupProbe on the management port, each
unless disabled. Container-level keys:
  {{- include "kubegrace-lib.probes" . | nindent 10 }}
With kubegrace.probes.grpc.enabled the three are Kubernetes `grpc:` probes of the
grpc.health.v1.Health service kubegrace/grpc adds to the app's gRPC server: readiness and startup
on probes.grpc.readinessService ("" is the overall status), liveness on probes.grpc.livenessService
("liveness", SERVING while draining), on probes.grpc.port, else the chart's containerPort.
*/}}
{{- define "kubegrace-lib.probes" -}}
{{- include "kubegrace-lib.probesUntrimmed" . | trim -}}
{{- end -}}

{{- define "kubegrace-lib.probesUntrimmed" -}}
{{- $budget := include "kubegrace-lib.budget" . | fromYaml -}}
{{- $c := include "kubegrace-lib.config" . | fromYaml -}}
{{- $port := int64 $budget.settings.probesPort -}}
{{- $grpc := $c.probes.grpc | default dict -}}
{{- $grpcPort := 0 -}}
{{- if $grpc.enabled -}}
{{- $raw := $grpc.port -}}
{{- if kindIs "invalid" $raw -}}{{- $raw = .Values.containerPort -}}{{- end -}}
{{- if kindIs "invalid" $raw -}}
{{- fail "kubegrace.probes.grpc.port must be set (the port of the gRPC server kubegrace/grpc adds the health service to): no port, and the chart has no containerPort value" -}}
{{- end -}}
{{- $grpcPort = include "kubegrace-lib.integer" (list "probes.grpc.port" $raw 1 "a port") | int64 -}}
{{- if gt $grpcPort 65535 -}}
{{- fail (printf "kubegrace.probes.grpc.port must be an integer port from 1 to 65535, received %v" $raw) -}}
{{- end -}}
{{- if not (kindIs "string" ($grpc.readinessService | default "")) -}}
{{- fail (printf "kubegrace.probes.grpc.readinessService must be a service name (a string; \"\" is the overall status), received %v" $grpc.readinessService) -}}
{{- end -}}
{{- if or (not (kindIs "string" $grpc.livenessService)) (eq ($grpc.livenessService | toString) "") -}}
{{- fail (printf "kubegrace.probes.grpc.livenessService must be a non-empty service name, received %v" $grpc.livenessService) -}}
{{- end -}}
{{- if eq $grpc.livenessService ($grpc.readinessService | default "") -}}
{{- fail (printf "kubegrace.probes.grpc.livenessService must not be the readiness service (%q): liveness on readiness restarts every draining pod" $grpc.livenessService) -}}
{{- end -}}
{{- end -}}
{{- range $field, $key := dict "readinessProbe" "readiness" "livenessProbe" "liveness" "startupProbe" "startup" }}
{{- $probe := index $c.probes $key | default dict }}
{{- if $probe.enabled }}
{{ $field }}:
  {{- if $grpc.enabled }}
  grpc:
    port: {{ $grpcPort }}
    service: {{ (eq $key "liveness" | ternary $grpc.livenessService ($grpc.readinessService | default "")) | quote }}
  {{- else }}
  httpGet:
    path: {{ $probe.path | quote }}
    port: {{ $port }}
  {{- end }}
  {{- range $setting := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "successThreshold" "failureThreshold" }}
  {{- if not (kindIs "invalid" (index $probe $setting)) }}
  {{ $setting }}: {{ include "kubegrace-lib.integer" (list (printf "probes.%s.%s" $key $setting) (index $probe $setting) 0 "seconds") }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
kubegrace-lib.lifecycle: `lifecycle:` with the preStop hook, or nothing when kubegrace.preStop is off
(the default: kubegrace keeps serving after SIGTERM by itself, so no hook has to hold SIGTERM back).
Fails here, where the hook is rendered, when this cluster cannot take it (kubegrace-lib.budget).
  {{- include "kubegrace-lib.lifecycle" . | nindent 10 }}
*/}}
{{- define "kubegrace-lib.lifecycle" -}}
{{- $budget := include "kubegrace-lib.budget" . | fromYaml -}}
{{- with $budget.preStop.error -}}
{{- fail . -}}
{{- end -}}
{{- if eq $budget.preStop.action "sleep" -}}
lifecycle:
  preStop:
    sleep:
      seconds: {{ int64 $budget.preStop.sleepSeconds }}
{{- else if eq $budget.preStop.action "exec" -}}
lifecycle:
  preStop:
    exec:
      command: {{ toJson $budget.preStop.execCommand }}
{{- end -}}
{{- end -}}

{{/*
kubegrace-lib.container: everything above for one container: ports are left to the chart (it has
its own), so this is env, probes and lifecycle.
*/}}
{{- define "kubegrace-lib.container" -}}
env:
  {{- include "kubegrace-lib.env" . | nindent 2 }}
{{- with include "kubegrace-lib.probes" . }}
{{ . }}
{{- end }}
{{- with include "kubegrace-lib.lifecycle" . }}
{{ . }}
{{- end }}
{{- end -}}

{{/*
kubegrace-lib.rbacRules: the Role rules kubegrace/kubernetes needs (docs/rbac.yaml): its own pod,
the namespace's EndpointSlices, and Events.
  rules:
    {{- include "kubegrace-lib.rbacRules" . | nindent 2 }}
*/}}
{{- define "kubegrace-lib.rbacRules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
