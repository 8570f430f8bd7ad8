/**
 * What the drainers report as they work. Every method is optional so that metrics (and tests) plug
 * in only what they need; the label values match the metric labels in docs/metrics.md.
 */
import type { PacedStep } from './pacer.js';

export type ConnectionProtocol = 'http1' | 'http2' | 'websocket' | 'grpc';

/**
 * Why kubegrace closed a connection: the `reason` label of `kubegrace_connections_closed_total`.
 * `event_stream_end`: the socket of a `text/event-stream` response that the drain ended at a
 * message boundary.
 */
export type CloseReason =
  | 'response_boundary'
  | 'idle'
  | 'goaway'
  | 'websocket_1001'
  | 'websocket_1012'
  | 'event_stream_end'
  | 'forced';

/** The protocols the paced drain closes: the `protocol` label of `kubegrace_paced_closes_total`. */
export type PacedProtocol = 'websocket' | 'http2' | 'event_stream' | 'socket_io';

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
  /**
   * The paced drain closed (began to close) a long-lived connection: in its slot of the window
   * (`paced`), or at the window's end or at once because the window was 0 (`window_end`).
   */
  pacedClose?(protocol: PacedProtocol, step: PacedStep): void;
}
