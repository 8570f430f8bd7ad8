/** Reads `dashboards/*.json` and `alerts/*.yaml` for the metrics tests: queries, variables, names. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboards/', import.meta.url));
export const ALERTS_DIR = fileURLToPath(new URL('../../alerts/', import.meta.url));

export interface Target {
  readonly expr: string;
  readonly refId: string;
  readonly instant?: boolean;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
}
export interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query?: unknown;
  readonly definition?: string;
}
export interface Dashboard {
  readonly file: string;
  readonly uid: string;
  readonly title: string;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
  readonly __inputs?: unknown;
  readonly [key: string]: unknown;
}

export function dashboards(): Dashboard[] {
  return readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ ...(JSON.parse(readFileSync(`${DASHBOARD_DIR}${file}`, 'utf8')) as Dashboard), file }));
}

/** Panels including those nested in collapsed rows. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export interface Query {
  readonly dashboard: string;
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
  readonly instant: boolean;
}

export function dashboardQueries(): Query[] {
  return dashboards().flatMap((d) =>
    allPanels(d).flatMap((p) =>
      (p.targets ?? []).map((t) => ({
        dashboard: d.uid,
        panel: p.title,
        refId: t.refId,
        expr: t.expr,
        instant: t.instant === true,
      })),
    ),
  );
}

/** Query variables as label-values lookups: `label_values(<match>, <label>)`. */
export function dashboardVariables(): { dashboard: string; name: string; label: string; match: string }[] {
  return dashboards().flatMap((d) =>
    d.templating.list
      .filter((v) => v.type === 'query')
      .map((v) => {
        const text =
          typeof v.query === 'string' ? v.query : ((v.query as { query?: string } | undefined)?.query ?? '');
        const m = /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(text.trim());
        if (!m?.[1] || !m[2])
          throw new Error(`${d.uid}: variable ${v.name} is not label_values(match, label): ${text}`);
        return { dashboard: d.uid, name: v.name, label: m[2], match: m[1] };
      }),
  );
}

/** What Grafana would put in: intervals for the time macros, `.*` (All) or a value for variables. */
export function substitute(expr: string, values: Readonly<Record<string, string>> = {}): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m')
    .replace(/\$\{?(\w+)\}?/g, (_, name: string) => values[name] ?? '.*');
}

export interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
export interface RuleGroups {
  readonly groups: readonly { readonly name: string; readonly rules: readonly Rule[] }[];
}

export function rulesFile(): RuleGroups {
  return parse(readFileSync(`${ALERTS_DIR}kubegrace.rules.yaml`, 'utf8')) as RuleGroups;
}

export function prometheusRule(): {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: RuleGroups;
} {
  return parse(readFileSync(`${ALERTS_DIR}prometheusrule.yaml`, 'utf8')) as {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: RuleGroups;
  };
}

/** Metric names in a PromQL expression, with histogram suffixes kept (`_bucket`, `_sum`, `_count`). */
export function metricNamesIn(expr: string): string[] {
  return [...expr.matchAll(/\bkubegrace_[a-z_]+\b/g)].map((m) => m[0]);
}
