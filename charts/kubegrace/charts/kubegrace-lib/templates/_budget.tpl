{{/*
kubegrace-lib.budget: the shutdown budget, as YAML. Every other template reads it, so the grace
period, the KUBEGRACE_* values and the preStop hook always come from the same arithmetic:

  preStop sleep + unready + propagation (max, or the fixed delay) + drain + cleanup + safety margin

which is what the library adds up at start-up (`shutdownBudget` in src/options.ts) and what
`kubegrace check` adds up on rendered manifests. terminationGracePeriodSeconds is that sum rounded
up to whole seconds, unless `kubegrace.terminationGracePeriodSeconds` overrides it.

  {{- $budget := include "kubegrace-lib.budget" . | fromYaml }}
  {{ $budget.graceSeconds }} {{ $budget.preStop.action }} {{ $budget.fits }}

Fails, naming the value, on what the library or the API server would refuse. What only the preStop
hook cannot have on this cluster (the sleep action before 1.30, zero seconds before 1.33, a sleep as
long as the grace period) is kept in `preStop.error` and raised by kubegrace-lib.lifecycle, so Helm
reports it at the template that renders the hook, not at the first template that reads the budget.
*/}}
{{- define "kubegrace-lib.budget" -}}
{{- $c := include "kubegrace-lib.config" . | fromYaml -}}
{{- $int := "kubegrace-lib.integer" -}}
{{- $p := $c.propagation | default dict -}}
{{- $strategy := $p.strategy -}}
{{- if not (has $strategy (list "adaptive" "fixed")) -}}
{{- fail (printf "kubegrace.propagation.strategy must be one of 'adaptive', 'fixed', received %v" $strategy) -}}
{{- end -}}
{{- $unready := include $int (list "unreadyTimeoutMs" $c.unreadyTimeoutMs 0 "ms") | int64 -}}
{{- $delay := include $int (list "propagation.delayMs" $p.delayMs 0 "ms") | int64 -}}
{{- $quiet := include $int (list "propagation.quietPeriodMs" $p.quietPeriodMs 0 "ms") | int64 -}}
{{- $min := include $int (list "propagation.minMs" $p.minMs 0 "ms") | int64 -}}
{{- $max := include $int (list "propagation.maxMs" $p.maxMs 0 "ms") | int64 -}}
{{- if gt $min $max -}}
{{- fail (printf "kubegrace.propagation.minMs must be at most kubegrace.propagation.maxMs (%d), received %d" $max $min) -}}
{{- end -}}
{{- $drain := include $int (list "drain.timeoutMs" ($c.drain | default dict).timeoutMs 0 "ms") | int64 -}}
{{- /* The pacing window is spent inside the drain budget (the library caps it at half the budget
       left), so it is validated and passed on but adds nothing to the sum. */ -}}
{{- $pacing := include $int (list "drain.pacingWindowMs" ($c.drain | default dict).pacingWindowMs 0 "ms") | int64 -}}
{{- $cleanup := include $int (list "cleanupTimeoutMs" $c.cleanupTimeoutMs 0 "ms") | int64 -}}
{{- /* The library refuses less: its watchdog needs the room to exit before the kill. */ -}}
{{- $margin := include $int (list "safetyMarginMs" $c.safetyMarginMs 750 "ms") | int64 -}}
{{- $probes := $c.probes | default dict -}}
{{- $port := include $int (list "probes.port" $probes.port 1 "port") | int64 -}}
{{- if gt $port 65535 -}}
{{- fail (printf "kubegrace.probes.port must be an integer port from 1 to 65535, received %d" $port) -}}
{{- end -}}
{{- if not (has $c.budgetCheck (list "error" "warn" "off")) -}}
{{- fail (printf "kubegrace.budgetCheck must be one of 'error', 'warn', 'off', received %v" $c.budgetCheck) -}}
{{- end -}}
{{- if not (has $c.readinessUntil (list "shutdown" "drain")) -}}
{{- fail (printf "kubegrace.readinessUntil must be one of 'shutdown', 'drain', received %v" $c.readinessUntil) -}}
{{- end -}}

{{- /* preStop: the sleep action where the cluster has it (beta, on by default, from 1.30; zero
       seconds from 1.33), else `kubegrace prestop` as an exec hook. */ -}}
{{- $ps := $c.preStop | default dict -}}
{{- $sleep := include $int (list "preStop.sleepSeconds" $ps.sleepSeconds 0 "seconds") | int64 -}}
{{- $kubeVersion := .Capabilities.KubeVersion.Version -}}
{{- $sleepSupported := semverCompare ">=1.30.0-0" $kubeVersion -}}
{{- $zeroSupported := semverCompare ">=1.33.0-0" $kubeVersion -}}
{{- $action := "none" -}}
{{- $preStopError := "" -}}
{{- if $ps.enabled -}}
{{- if eq $ps.action "exec" -}}
{{- $action = "exec" -}}
{{- else if eq $ps.action "sleep" -}}
{{- if not $sleepSupported -}}
{{- $preStopError = printf "kubegrace.preStop.action 'sleep' needs Kubernetes 1.30 or later (the preStop sleep action); this cluster is %s: use action 'auto' (falls back to exec) or 'exec'" $kubeVersion -}}
{{- else if and (eq $sleep 0) (not $zeroSupported) -}}
{{- $preStopError = printf "kubegrace.preStop.sleepSeconds 0 needs Kubernetes 1.33 or later (zero-second sleep); this cluster is %s: use at least 1, or action 'exec'" $kubeVersion -}}
{{- end -}}
{{- $action = "sleep" -}}
{{- else if eq $ps.action "auto" -}}
{{- $action = ternary "sleep" "exec" (and $sleepSupported (or (gt $sleep 0) $zeroSupported)) -}}
{{- else -}}
{{- fail (printf "kubegrace.preStop.action must be one of 'auto', 'sleep', 'exec', received %v" $ps.action) -}}
{{- end -}}
{{- end -}}
{{- if eq $action "exec" -}}
{{- if or (not (kindIs "slice" $ps.execCommand)) (empty $ps.execCommand) -}}
{{- fail (printf "kubegrace.preStop.execCommand must be a non-empty list of strings, received %v" $ps.execCommand) -}}
{{- end -}}
{{- range $ps.execCommand -}}
{{- if not (kindIs "string" .) -}}
{{- fail (printf "kubegrace.preStop.execCommand must be a non-empty list of strings, received %v" $ps.execCommand) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $sleepSeconds := ternary $sleep (int64 0) (eq $action "sleep") -}}

{{- $propagationName := ternary "propagation (fixed)" "propagation max" (eq $strategy "fixed") -}}
{{- $propagationMs := ternary $delay $max (eq $strategy "fixed") -}}
{{- $propagationValue := ternary "propagation.delayMs" "propagation.maxMs" (eq $strategy "fixed") -}}
{{- $total := add (mul $sleepSeconds 1000) $unready $propagationMs $drain $cleanup $margin -}}
{{- $computed := max 1 (div (add $total 999) 1000) -}}
{{- if and (eq $action "sleep") (ge $sleepSeconds $computed) -}}
{{- /* The API server wants the sleep shorter than the grace period. */ -}}
{{- $computed = add $sleepSeconds 1 -}}
{{- end -}}
{{- $grace := $computed -}}
{{- $graceSource := "computed" -}}
{{- if not (kindIs "invalid" $c.terminationGracePeriodSeconds) -}}
{{- $grace = include $int (list "terminationGracePeriodSeconds" $c.terminationGracePeriodSeconds 1 "seconds") | int64 -}}
{{- $graceSource = "kubegrace.terminationGracePeriodSeconds" -}}
{{- end -}}
{{- if gt $grace 2147483 -}}
{{- /* The library refuses it at start-up: its milliseconds must fit a timer. */ -}}
{{- fail (printf "terminationGracePeriodSeconds would be %d (%s), above 2147483 s, the most kubegrace accepts (KUBEGRACE_GRACE_PERIOD_SECONDS): shorten the phase budgets%s" $grace $graceSource (ternary " or the override" "" (ne $graceSource "computed"))) -}}
{{- end -}}
{{- if and (eq $action "sleep") (ge $sleepSeconds $grace) (eq $preStopError "") -}}
{{- $preStopError = printf "kubegrace.preStop.sleepSeconds (%d) must be less than terminationGracePeriodSeconds (%d): the API server refuses a preStop sleep that spends the whole grace period" $sleepSeconds $grace -}}
{{- end -}}
kubeVersion: {{ $kubeVersion | quote }}
preStop:
  action: {{ $action }}
  sleepSeconds: {{ $sleepSeconds }}
  {{- if ne $preStopError "" }}
  error: {{ toJson $preStopError }}
  {{- end }}
  {{- if eq $action "exec" }}
  execCommand: {{ toJson $ps.execCommand }}
  {{- end }}
terms:
  - { name: preStop sleep, ms: {{ mul $sleepSeconds 1000 }}, value: preStop.sleepSeconds }
  - { name: unready, ms: {{ $unready }}, value: unreadyTimeoutMs }
  - { name: {{ $propagationName }}, ms: {{ $propagationMs }}, value: {{ $propagationValue }} }
  - { name: drain, ms: {{ $drain }}, value: drain.timeoutMs }
  - { name: cleanup, ms: {{ $cleanup }}, value: cleanupTimeoutMs }
  - { name: safety margin, ms: {{ $margin }}, value: safetyMarginMs }
totalMs: {{ $total }}
computedGraceSeconds: {{ $computed }}
graceSeconds: {{ $grace }}
graceSource: {{ $graceSource }}
fits: {{ le $total (mul $grace 1000) }}
spareMs: {{ sub (mul $grace 1000) $total }}
settings:
  unreadyTimeoutMs: {{ $unready }}
  propagation:
    strategy: {{ $strategy }}
    delayMs: {{ $delay }}
    quietPeriodMs: {{ $quiet }}
    minMs: {{ $min }}
    maxMs: {{ $max }}
  drainTimeoutMs: {{ $drain }}
  drainPacingWindowMs: {{ $pacing }}
  cleanupTimeoutMs: {{ $cleanup }}
  safetyMarginMs: {{ $margin }}
  probesPort: {{ $port }}
  budgetCheck: {{ $c.budgetCheck }}
  readinessUntil: {{ $c.readinessUntil }}
{{- end -}}

{{/*
kubegrace-lib.terminationGracePeriodSeconds: the pod's grace period, a bare integer.
  terminationGracePeriodSeconds: {{ include "kubegrace-lib.terminationGracePeriodSeconds" . }}
*/}}
{{- define "kubegrace-lib.terminationGracePeriodSeconds" -}}
{{- $budget := include "kubegrace-lib.budget" . | fromYaml -}}
{{- int64 $budget.graceSeconds -}}
{{- end -}}

{{/*
kubegrace-lib.budgetSummary: one line, for NOTES.txt and logs:
  preStop none + unready 2 s + propagation max 10 s + drain 10 s + cleanup 5 s + safety margin 1 s = 28 s of terminationGracePeriodSeconds 28 (computed): fits
*/}}
{{- define "kubegrace-lib.budgetSummary" -}}
{{- $budget := include "kubegrace-lib.budget" . | fromYaml -}}
{{- $parts := list -}}
{{- range $budget.terms -}}
{{- if gt (int64 .ms) 0 -}}
{{- $parts = append $parts (printf "%s %s" .name (include "kubegrace-lib.formatMs" .ms)) -}}
{{- end -}}
{{- end -}}
{{- if empty $parts -}}
{{- $parts = list "0 s" -}}
{{- end -}}
{{- printf "%s = %s of terminationGracePeriodSeconds %d (%s): " (join " + " $parts) (include "kubegrace-lib.formatMs" $budget.totalMs) (int64 $budget.graceSeconds) $budget.graceSource -}}
{{- if $budget.fits -}}
{{- printf "fits, %s to spare" (include "kubegrace-lib.formatMs" $budget.spareMs) -}}
{{- else -}}
{{- printf "DOES NOT FIT, over by %s" (include "kubegrace-lib.formatMs" (sub (int64 $budget.totalMs) (mul (int64 $budget.graceSeconds) 1000))) -}}
{{- end -}}
{{- end -}}
