/**
 * What the drainers report as they work. Every method is optional so that metrics (and tests) plug
 * in only what they need; the label values match the metric labels in docs/metrics.md.
 */
export type ConnectionProtocol = 'http1' | 'http2' | 'websocket';

/** Why kubegrace closed a connection: the `reason` label of `kubegrace_connections_closed_total`. */
export type CloseReason = 'response_boundary' | 'idle' | 'goaway' | 'websocket_1001' | 'forced';

export interface DrainObserver {
  /** A request began to be tracked (every tracked request, 503s during drain included). */
  requestStarted?(): void;
  /** A tracked request's response finished or its connection closed. */
  requestFinished?(): void;
  connectionOpened?(protocol: ConnectionProtocol): void;
  /**
   * A connection closed. `reason` is undefined when kubegrace did not close it: the client closed it,
   * or it closed normally (keep-alive timeout) before the shutdown began, or it was upgraded away.
   */
  connectionClosed?(protocol: ConnectionProtocol, reason: CloseReason | undefined): void;
}
