{{/*
kubegrace-lib: named templates for charts whose pods run a kubegrace service.

Every template takes the chart's root context (`.`) and reads the `kubegrace:` block of its values,
merged over the defaults below, so a chart only sets what it changes. Durations are milliseconds and
carry the library's option names (`drain.timeoutMs` is the option `drain.timeoutMs` and the variable
KUBEGRACE_DRAIN_TIMEOUT_MS); only fields that mirror a Kubernetes field in seconds are seconds.
Reference: docs/helm.md.
*/}}

{{/*
kubegrace-lib.defaults: the library's own defaults (src/options.ts `defaults`), plus the pod-side
settings only a chart has (preStop hook, probe timing). A test keeps them equal to the library's.
*/}}
{{- define "kubegrace-lib.defaults" -}}
unreadyTimeoutMs: 2000
propagation:
  strategy: adaptive
  delayMs: 5000
  quietPeriodMs: 1000
  minMs: 0
  maxMs: 10000
drain:
  timeoutMs: 10000
  pacingWindowMs: 5000
cleanupTimeoutMs: 5000
safetyMarginMs: 1000
terminationGracePeriodSeconds: null
budgetCheck: error
readinessUntil: shutdown
preStop:
  enabled: false
  action: auto
  sleepSeconds: 5
  execCommand:
    - kubegrace
    - prestop
probes:
  port: 9000
  readiness:
    enabled: true
    path: /readyz
    initialDelaySeconds: 0
    periodSeconds: 2
    timeoutSeconds: 1
    successThreshold: 1
    failureThreshold: 2
  liveness:
    enabled: true
    path: /livez
    initialDelaySeconds: 0
    periodSeconds: 10
    timeoutSeconds: 2
    successThreshold: 1
    failureThreshold: 3
  startup:
    enabled: true
    path: /startupz
    initialDelaySeconds: 0
    periodSeconds: 1
    timeoutSeconds: 1
    successThreshold: 1
    failureThreshold: 30
  grpc:
    enabled: false
    port: null
    readinessService: ""
    livenessService: liveness
downwardApi: true
{{- end -}}

{{/*
kubegrace-lib.config: `.Values.kubegrace` merged over kubegrace-lib.defaults, as YAML.
  {{- $config := include "kubegrace-lib.config" . | fromYaml }}
*/}}
{{- define "kubegrace-lib.config" -}}
{{- $defaults := include "kubegrace-lib.defaults" . | fromYaml -}}
{{- $values := dict -}}
{{- if .Values.kubegrace -}}
{{- $values = deepCopy .Values.kubegrace -}}
{{- end -}}
{{- toYaml (mergeOverwrite $defaults $values) -}}
{{- end -}}

{{/*
kubegrace-lib.integer: validates one value and prints it as an integer.
  include "kubegrace-lib.integer" (list "drain.timeoutMs" $value 0 "ms")
Fails like the library does: `kubegrace.drain.timeoutMs must be a non-negative integer (ms), received -1`.
*/}}
{{- define "kubegrace-lib.integer" -}}
{{- $name := index . 0 -}}
{{- $value := index . 1 -}}
{{- $min := index . 2 -}}
{{- $unit := index . 3 -}}
{{- $isNumber := or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) -}}
{{- if not $isNumber -}}
{{- fail (printf "kubegrace.%s must be %s integer (%s), received %v" $name (ternary "a non-negative" (ternary "a positive" (printf "an integer of at least %d, an" (int $min)) (eq (int $min) 1)) (eq (int $min) 0)) $unit $value) -}}
{{- end -}}
{{- /* YAML reads a large number as a float: show it whole, not as 1e+10. */ -}}
{{- $shown := ternary (printf "%.0f" (float64 $value)) (printf "%v" $value) (eq (float64 $value) (floor $value)) -}}
{{- $expected := ternary "a non-negative integer" (ternary "a positive integer" (printf "an integer of at least %d" (int $min)) (eq (int $min) 1)) (eq (int $min) 0) -}}
{{- if or (ne (float64 $value) (floor $value)) (lt (float64 $value) (float64 $min)) -}}
{{- fail (printf "kubegrace.%s must be %s (%s), received %s" $name $expected $unit $shown) -}}
{{- end -}}
{{- if gt (float64 $value) 2147483647.0 -}}
{{- fail (printf "kubegrace.%s must be at most 2147483647 (%s), received %s" $name $unit $shown) -}}
{{- end -}}
{{- int64 $value -}}
{{- end -}}

{{/*
kubegrace-lib.formatMs: 1500 → "1.5 s", 10000 → "10 s".
*/}}
{{- define "kubegrace-lib.formatMs" -}}
{{- $ms := int64 . -}}
{{- printf "%s s" (regexReplaceAll "\\.?0*$" (printf "%d.%03d" (div $ms 1000) (mod $ms 1000)) "") -}}
{{- end -}}
