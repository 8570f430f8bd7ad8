/** The options of `metrics()`, read through the one settings reader (`src/settings.ts`). */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { invalidOption } from '../errors.js';
import { processEnv } from '../process.js';
import { createSettingReader, type SettingReader } from '../settings.js';
import { validatePushUrl } from './pushgateway.js';

export interface FinalScrapeOptions {
  /**
   * Longest wait for a scrape after the shutdown's outcome is recorded; the shutdown deadline
   * bounds it as well. Set it a little above the scrape interval. @default 15000
   */
  readonly timeoutMs?: number;
}

export interface PushgatewayOptions {
  /** Base URL, e.g. `http://prometheus-pushgateway.monitoring:9091`. */
  readonly url: string;
  /** The `job` grouping label. */
  readonly job: string;
  /** @default env POD_NAMESPACE, then the service account's namespace file */
  readonly namespace?: string;
  /** @default env POD_NAME, then the host name (the pod name in Kubernetes) */
  readonly pod?: string;
  /** Longest time the push may take; the shutdown deadline bounds it as well. @default 5000 */
  readonly timeoutMs?: number;
}

export interface MetricsOptions {
  /** Where the collectors live. @default prom-client's global registry */
  readonly registry?: Registry;
  /**
   * Path of the metrics endpoint on the management server; `false` to serve the registry yourself
   * (mount `handler`). When the management server is disabled and no path is given, nothing is served.
   * @default '/metrics'
   */
  readonly path?: string | false;
  /** Hold the exit phase until one scrape has seen the final figures. @default off */
  readonly finalScrape?: boolean | FinalScrapeOptions;
  /** Push the final figures to a Pushgateway in the exit phase. @default off */
  readonly pushgateway?: PushgatewayOptions;
  /** Environment for `POD_NAMESPACE` / `POD_NAME`. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const DEFAULT_FINAL_SCRAPE_TIMEOUT_MS = 15_000;
const DEFAULT_PUSH_TIMEOUT_MS = 5_000;
const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface ResolvedMetricsOptions {
  readonly registry: Registry | undefined;
  /** Undefined: no final-scrape wait. */
  readonly finalScrapeMs: number | undefined;
  readonly pushgateway: ResolvedPushgateway | undefined;
  readonly path: string | false | undefined;
}

export interface ResolvedPushgateway {
  readonly url: string;
  readonly job: string;
  readonly namespace: string;
  readonly pod: string;
  readonly timeoutMs: number;
}

/** Checks every option before anything uses one; errors name the option. */
export function resolveMetricsOptions(options: MetricsOptions = {}): ResolvedMetricsOptions {
  const read = createSettingReader(
    createSettingReader({}).object('env', options.env, 'an object of environment variables') ?? processEnv(),
  );
  read.object('metrics options', options, 'an object', [
    'registry',
    'path',
    'finalScrape',
    'pushgateway',
    'env',
  ]);
  const registry = options.registry;
  if (registry !== undefined && typeof (registry as Partial<Registry>).getSingleMetric !== 'function') {
    throw invalidOption('registry', 'a prom-client Registry', registry);
  }
  const path = options.path;
  if (path !== undefined && path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw invalidOption('path', "a path starting with '/' or false", path);
  }
  return {
    registry,
    finalScrapeMs: resolveFinalScrape(read, options.finalScrape),
    pushgateway:
      options.pushgateway === undefined ? undefined : resolvePushgateway(read, options.pushgateway),
    path,
  };
}

function resolveFinalScrape(read: SettingReader, option: MetricsOptions['finalScrape']): number | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return DEFAULT_FINAL_SCRAPE_TIMEOUT_MS;
  const given = read.object<FinalScrapeOptions>('finalScrape', option, 'true, false or { timeoutMs }', [
    'timeoutMs',
  ]);
  return read.ms('finalScrape.timeoutMs', given?.timeoutMs, undefined) ?? DEFAULT_FINAL_SCRAPE_TIMEOUT_MS;
}

function resolvePushgateway(read: SettingReader, option: PushgatewayOptions): ResolvedPushgateway {
  read.object('pushgateway', option, 'an object', ['url', 'job', 'namespace', 'pod', 'timeoutMs']);
  validatePushUrl(option.url);
  const job = read.required(
    read.string('pushgateway.job', option.job, undefined),
    'pushgateway.job',
    undefined,
    'a non-empty string',
  );
  const namespace =
    read.string('pushgateway.namespace', option.namespace, 'POD_NAMESPACE') ?? serviceAccountNamespace();
  if (namespace === undefined) {
    throw invalidOption(
      'pushgateway.namespace',
      'a namespace (or POD_NAMESPACE from the Downward API, or an in-cluster service account)',
      option.namespace,
    );
  }
  const pod = read.string('pushgateway.pod', option.pod, 'POD_NAME') ?? hostname();
  const timeoutMs = read.ms('pushgateway.timeoutMs', option.timeoutMs, undefined) ?? DEFAULT_PUSH_TIMEOUT_MS;
  return { url: option.url, job, namespace, pod, timeoutMs };
}

function serviceAccountNamespace(): string | undefined {
  try {
    const text = readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}
