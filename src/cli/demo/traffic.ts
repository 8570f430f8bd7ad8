/**
 * Traffic shapes: who connects, how often, and how the Service routes a new connection. The shapes
 * other than `steady` are the ones where a pod can see a second or more without a new connection
 * while its endpoint is still listed somewhere, so silence alone cannot tell it that it is safe to go.
 */
import type { EndpointChoice } from './endpoint-table.js';
import type { ArrivalProcess } from './load.js';

export const TRAFFIC_SHAPES = ['steady', 'pooled', 'sparse', 'random', 'nodes', 'in-cluster'] as const;
export type TrafficShapeName = (typeof TRAFFIC_SHAPES)[number];

export interface TrafficShape {
  /** One line for tables and help texts. */
  readonly label: string;
  /** Pooled keep-alive client loops. */
  readonly concurrency: number;
  /** New clients per second at the Service, each on a fresh connection. */
  readonly newConnectionsPerSecond: number;
  readonly arrivals: ArrivalProcess;
  readonly endpointChoice: EndpointChoice;
  /** Nodes, each with its own table and lag (lag·i/n for node i of n). */
  readonly nodes: number;
  /** The long-request share this shape is about, when it is about one (else the work's). */
  readonly longShare?: number;
  readonly longMs?: number;
  /**
   * The pods run the Kubernetes integration against an API server whose EndpointSlice marks the
   * endpoint terminating ~50 ms after the SIGTERM, while the node tables follow after their lags.
   */
  readonly inCluster: boolean;
  /** Load before the first SIGTERM: the history a long-running pod would have. */
  readonly warmupMs: number;
}

export const trafficShapes: Readonly<Record<TrafficShapeName, TrafficShape>> = {
  steady: {
    label: '16 pooled + 20 new clients/s on a clock, round robin',
    concurrency: 16,
    newConnectionsPerSecond: 20,
    arrivals: 'clock',
    endpointChoice: 'round-robin',
    nodes: 1,
    inCluster: false,
    warmupMs: 1000,
  },
  pooled: {
    label: '32 pooled, 10 % of requests 3 s, no new clients',
    concurrency: 32,
    newConnectionsPerSecond: 0,
    arrivals: 'clock',
    endpointChoice: 'round-robin',
    nodes: 1,
    longShare: 0.1,
    longMs: 3000,
    inCluster: false,
    warmupMs: 5000,
  },
  sparse: {
    label: '16 pooled + Poisson 1 new client/s, round robin',
    concurrency: 16,
    newConnectionsPerSecond: 1,
    arrivals: 'poisson',
    endpointChoice: 'round-robin',
    nodes: 1,
    inCluster: false,
    warmupMs: 5000,
  },
  random: {
    label: '16 pooled + 5 new clients/s, random endpoint (iptables)',
    concurrency: 16,
    newConnectionsPerSecond: 5,
    arrivals: 'clock',
    endpointChoice: 'random',
    nodes: 1,
    inCluster: false,
    warmupMs: 5000,
  },
  nodes: {
    label: '16 pooled + 10 new clients/s, 3 nodes lagging lag/3, 2/3 lag, lag; random',
    concurrency: 16,
    newConnectionsPerSecond: 10,
    arrivals: 'clock',
    endpointChoice: 'random',
    nodes: 3,
    inCluster: false,
    warmupMs: 5000,
  },
  'in-cluster': {
    label: 'nodes with Poisson 2 new clients/s; EndpointSlice not ready at 50 ms',
    concurrency: 16,
    newConnectionsPerSecond: 2,
    arrivals: 'poisson',
    endpointChoice: 'random',
    nodes: 3,
    inCluster: true,
    warmupMs: 5000,
  },
};
