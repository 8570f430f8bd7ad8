/**
 * `kubegrace/metrics`: Prometheus metrics for kubegrace through prom-client (an optional peer
 * dependency: only this entry point loads it).
 */
export { instrument, REGISTRY_PARTICIPANT_PREFIX } from './instrument.js';
export type {
  DeregistrationOutcome,
  FinalScrapeOptions,
  InstrumentTarget,
  KubegraceMetrics,
  MetricsOptions,
  PushgatewayOptions,
  ShutdownFigures,
} from './instrument.js';
export { DURATION_BUCKETS, METRIC_NAMES, METRICS } from './collectors.js';
export type { HookOutcome } from './collectors.js';
