/**
 * `kubegrace/metrics`: Prometheus metrics for kubegrace through prom-client (an optional peer
 * dependency: only this entry point loads it). `kg.use(metrics())`.
 */
export { metrics } from './instrument.js';
export type {
  DeregistrationOutcome,
  FinalScrapeOptions,
  KubegraceMetrics,
  MetricsOptions,
  PushgatewayOptions,
  ShutdownFigures,
} from './instrument.js';
