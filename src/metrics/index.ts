/**
 * `kubegrace/metrics`: Prometheus metrics for kubegrace through prom-client (an optional peer
 * dependency: only this entry point loads it).
 */
export { instrument } from './instrument.js';
export type {
  DeregistrationOutcome,
  FinalScrapeOptions,
  InstrumentTarget,
  KubegraceMetrics,
  MetricsOptions,
  PushgatewayOptions,
  ShutdownFigures,
} from './instrument.js';
