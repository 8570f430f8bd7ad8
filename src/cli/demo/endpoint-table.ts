/**
 * A kube-proxy model: a Service's endpoint list and a client-side `http.Agent` that routes each NEW
 * connection to a current endpoint, while pooled keep-alive connections stay on the pod they were
 * opened to (as conntrack keeps established flows on a removed endpoint).
 */
import { Agent, type AgentOptions } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface Endpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface EndpointTableEvents {
  /** `removed` fires when the table drops the endpoint, i.e. after the propagation lag. */
  readonly type: 'added' | 'removing' | 'removed';
  readonly endpoint: Endpoint;
  readonly at: number;
}

export interface EndpointTable {
  /** The endpoints new connections go to now. */
  readonly endpoints: readonly Endpoint[];
  /** A keep-alive agent whose new connections follow the table. */
  readonly agent: Agent;
  /** An agent that opens a fresh connection for every request (a new client), through the same table. */
  readonly freshAgent: Agent;
  /**
   * A new connection to the endpoint the Service picks now (for clients that bring their own
   * protocol, e.g. HTTP/2); undefined when the table is empty.
   */
  connect(): { readonly socket: Socket; readonly endpoint: Endpoint } | undefined;
  add(endpoint: Endpoint): void;
  /** Drop `endpoint` `afterMs` from now (the control plane's propagation lag); resolves once dropped. */
  remove(endpoint: Endpoint, afterMs: number): Promise<void>;
  /** The endpoint a client socket was connected to, if it came from this table. */
  endpointOf(socket: Duplex | null | undefined): Endpoint | undefined;
  /** New connections opened to each endpoint so far. */
  connectionsOpened(endpoint: Endpoint): number;
  on(listener: (event: EndpointTableEvents) => void): () => void;
  /** Cancel pending removals and destroy every pooled socket. */
  destroy(): void;
}

/** A connection attempt while the table is empty fails the way a Service without endpoints does. */
function noEndpointError(): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error('connect ECONNREFUSED: the Service has no endpoints');
  error.code = 'ECONNREFUSED';
  return error;
}

export function createEndpointTable(agentOptions: AgentOptions = {}): EndpointTable {
  const current: Endpoint[] = [];
  const socketEndpoint = new WeakMap<object, Endpoint>();
  const opened = new Map<Endpoint, number>();
  const pending = new Set<NodeJS.Timeout>();
  const listeners = new Set<(event: EndpointTableEvents) => void>();
  let next = 0;

  const emit = (type: EndpointTableEvents['type'], endpoint: Endpoint): void => {
    const event = { type, endpoint, at: Date.now() };
    for (const listener of listeners) listener(event);
  };

  // One pool for the whole Service: every request names the same virtual host, so keep-alive
  // sockets are shared across endpoints exactly as a client behind a ClusterIP shares them.
  const agent = new Agent({ keepAlive: true, scheduling: 'lifo', ...agentOptions });
  const freshAgent = new Agent({ keepAlive: false });
  function connect(): { socket: Socket; endpoint: Endpoint } | undefined {
    const endpoint = current[next++ % Math.max(current.length, 1)];
    if (endpoint === undefined) return undefined;
    const socket: Socket = createConnection({ host: endpoint.host, port: endpoint.port });
    socketEndpoint.set(socket, endpoint);
    opened.set(endpoint, (opened.get(endpoint) ?? 0) + 1);
    return { socket, endpoint };
  }

  agent.createConnection = freshAgent.createConnection = (_options, callback) => {
    const connection = connect();
    if (connection === undefined) {
      // Reaches the request as its error, like a refused connect would.
      process.nextTick(() => callback?.(noEndpointError(), undefined as unknown as Duplex));
      return undefined;
    }
    return connection.socket;
  };

  function add(endpoint: Endpoint): void {
    if (!current.includes(endpoint)) current.push(endpoint);
    emit('added', endpoint);
  }

  function remove(endpoint: Endpoint, afterMs: number): Promise<void> {
    emit('removing', endpoint);
    return new Promise((resolve) => {
      const drop = (): void => {
        pending.delete(timer);
        const index = current.indexOf(endpoint);
        if (index !== -1) current.splice(index, 1);
        emit('removed', endpoint);
        resolve();
      };
      const timer = setTimeout(drop, Math.max(0, afterMs));
      pending.add(timer);
    });
  }

  return {
    get endpoints() {
      return [...current];
    },
    agent,
    freshAgent,
    connect,
    add,
    remove,
    endpointOf: (socket) => (socket ? socketEndpoint.get(socket) : undefined),
    connectionsOpened: (endpoint) => opened.get(endpoint) ?? 0,
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
