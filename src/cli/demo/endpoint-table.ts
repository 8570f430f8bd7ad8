/**
 * A kube-proxy model: a Service's endpoint list and a client-side `http.Agent` that routes each NEW
 * connection to a current endpoint, while pooled keep-alive connections stay on the pod they were
 * opened to (as conntrack keeps established flows on a removed endpoint).
 *
 * With `nodes` > 1 every node keeps its own copy of the list and drops a removed endpoint after its
 * own lag; a new connection goes through a random node, as client pods spread over nodes do.
 */
import { Agent, type AgentOptions } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { seededRandom } from './load.js';

export interface Endpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface EndpointTableEvents {
  /**
   * `node-removed` fires when one node drops the endpoint; `removed` when the last one did, i.e.
   * after the (slowest node's) propagation lag: from then on no new connection reaches it.
   */
  readonly type: 'added' | 'removing' | 'node-removed' | 'removed';
  readonly endpoint: Endpoint;
  readonly at: number;
  /** The node, for `node-removed`. */
  readonly node?: number;
}

/**
 * How a node picks the endpoint of a new connection: `round-robin` (IPVS's rr, one counter per node)
 * or `random` (iptables mode: uniform at random per new connection).
 */
export type EndpointChoice = 'round-robin' | 'random';

export interface EndpointTableOptions {
  /** @default 'round-robin' */
  readonly choice?: EndpointChoice;
  /**
   * Nodes, each with its own copy of the list; `remove(endpoint, lag)` drops it on node i (0-based)
   * of n after lag·(i+1)/n, so the slowest node takes the whole lag. @default 1
   */
  readonly nodes?: number;
  /** Seed of the random node and endpoint choices. @default 1 */
  readonly seed?: number;
  readonly agentOptions?: AgentOptions;
}

/**
 * Who opens a connection. Each kind draws its random choices from its own seeded sequence, so the
 * routing of new clients does not depend on how many reconnects the pooled clients happened to make
 * (the choices stay independent and uniform either way).
 */
export type ConnectionKind = 'pooled' | 'new-client';

export interface EndpointTable {
  /** The endpoints new connections go to now. */
  readonly endpoints: readonly Endpoint[];
  /** A keep-alive agent whose new connections follow the table. */
  readonly agent: Agent;
  /** An agent that opens a fresh connection for every request (a new client), through the same table. */
  readonly freshAgent: Agent;
  /**
   * A new connection to the endpoint the Service picks now (for clients that bring their own
   * protocol, e.g. HTTP/2); undefined when the table (of the node it went through) is empty.
   */
  connect(kind?: ConnectionKind): { readonly socket: Socket; readonly endpoint: Endpoint } | undefined;
  add(endpoint: Endpoint): void;
  /**
   * Drop `endpoint` `afterMs` from now (the control plane's propagation lag; with several nodes, the
   * slowest node's); resolves once no node lists it.
   */
  remove(endpoint: Endpoint, afterMs: number): Promise<void>;
  /** The endpoint a client socket was connected to, if it came from this table. */
  endpointOf(socket: Duplex | null | undefined): Endpoint | undefined;
  /** New connections opened to an endpoint so far, or within [from, to) (epoch ms). */
  connectionsOpened(endpoint: Endpoint, from?: number, to?: number): number;
  on(listener: (event: EndpointTableEvents) => void): () => void;
  /** Cancel pending removals and destroy every pooled socket. */
  destroy(): void;
}

/**
 * The routing draws of successive new connections of one kind: the node each goes through, and for
 * `random` choice the uniform draw that picks its endpoint (undefined for round robin). The table
 * routes with exactly these, so a test can tell in advance where each new client will go.
 */
export function connectionDraws(
  options: EndpointTableOptions,
  kind: ConnectionKind,
): () => { readonly node: number; readonly draw: number | undefined } {
  const nodeCount = Math.max(1, Math.floor(options.nodes ?? 1));
  const random = seededRandom((options.seed ?? 1) + (kind === 'pooled' ? 0 : 0x9e3779b9));
  return () => ({
    node: nodeCount === 1 ? 0 : Math.floor(random() * nodeCount),
    draw: options.choice === 'random' ? random() : undefined,
  });
}

/** A connection attempt while the table is empty fails the way a Service without endpoints does. */
function noEndpointError(): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error('connect ECONNREFUSED: the Service has no endpoints');
  error.code = 'ECONNREFUSED';
  return error;
}

export function createEndpointTable(options: EndpointTableOptions = {}): EndpointTable {
  const nodeCount = Math.max(1, Math.floor(options.nodes ?? 1));
  const nodes = Array.from({ length: nodeCount }, () => ({ current: [] as Endpoint[], next: 0 }));
  const draws: Record<ConnectionKind, ReturnType<typeof connectionDraws>> = {
    pooled: connectionDraws(options, 'pooled'),
    'new-client': connectionDraws(options, 'new-client'),
  };
  const socketEndpoint = new WeakMap<object, Endpoint>();
  const opened = new Map<Endpoint, number[]>();
  const pending = new Set<NodeJS.Timeout>();
  const listeners = new Set<(event: EndpointTableEvents) => void>();

  const emit = (type: EndpointTableEvents['type'], endpoint: Endpoint, node?: number): void => {
    const event = { type, endpoint, at: Date.now(), ...(node === undefined ? {} : { node }) };
    for (const listener of listeners) listener(event);
  };

  function pick(kind: ConnectionKind): Endpoint | undefined {
    const route = draws[kind]();
    const node = nodes[route.node];
    if (node === undefined || node.current.length === 0) return undefined;
    const index = route.draw === undefined ? node.next++ : Math.floor(route.draw * node.current.length);
    return node.current[index % node.current.length];
  }

  // One pool for the whole Service: every request names the same virtual host, so keep-alive
  // sockets are shared across endpoints exactly as a client behind a ClusterIP shares them.
  const agent = new Agent({ keepAlive: true, scheduling: 'lifo', ...options.agentOptions });
  const freshAgent = new Agent({ keepAlive: false });
  function connect(kind: ConnectionKind = 'pooled'): { socket: Socket; endpoint: Endpoint } | undefined {
    const endpoint = pick(kind);
    if (endpoint === undefined) return undefined;
    const socket: Socket = createConnection({ host: endpoint.host, port: endpoint.port });
    socketEndpoint.set(socket, endpoint);
    const times = opened.get(endpoint) ?? [];
    times.push(Date.now());
    opened.set(endpoint, times);
    return { socket, endpoint };
  }

  const through =
    (kind: ConnectionKind): Agent['createConnection'] =>
    (_options, callback) => {
      const connection = connect(kind);
      if (connection === undefined) {
        // Reaches the request as its error, like a refused connect would.
        process.nextTick(() => callback?.(noEndpointError(), undefined as unknown as Duplex));
        return undefined;
      }
      return connection.socket;
    };
  agent.createConnection = through('pooled');
  freshAgent.createConnection = through('new-client');

  function add(endpoint: Endpoint): void {
    for (const node of nodes) if (!node.current.includes(endpoint)) node.current.push(endpoint);
    emit('added', endpoint);
  }

  function remove(endpoint: Endpoint, afterMs: number): Promise<void> {
    emit('removing', endpoint);
    const drops = nodes.map(
      (node, i) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(
            () => {
              pending.delete(timer);
              const index = node.current.indexOf(endpoint);
              if (index !== -1) node.current.splice(index, 1);
              if (nodeCount > 1) emit('node-removed', endpoint, i);
              resolve();
            },
            Math.max(0, (afterMs * (i + 1)) / nodeCount),
          );
          pending.add(timer);
        }),
    );
    return Promise.all(drops).then(() => emit('removed', endpoint));
  }

  return {
    get endpoints() {
      return [...new Set(nodes.flatMap((node) => node.current))];
    },
    agent,
    freshAgent,
    connect,
    add,
    remove,
    endpointOf: (socket) => (socket ? socketEndpoint.get(socket) : undefined),
    connectionsOpened: (endpoint, from = -Infinity, to = Infinity) =>
      (opened.get(endpoint) ?? []).filter((t) => t >= from && t < to).length,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    destroy() {
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
      agent.destroy();
      freshAgent.destroy();
    },
  };
}
