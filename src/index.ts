/**
 * `kubegrace`: the factory, its options and the types an app needs to write hooks, participants and
 * checks. Everything else is private to the package; docs/api.md describes each export.
 */
export { createKubegrace } from './kubegrace.js';
export type {
  AttachOptions,
  Hook,
  HookOptions,
  Kubegrace,
  KubegraceOptions,
  WebSocketClientLike,
  WebSocketAttachOptions,
  WebSocketServerLike,
} from './kubegrace.js';
export type {
  LifecycleEvents,
  LifecycleState,
  Participant,
  ParticipantResult,
  PhaseContext,
  PhaseName,
  ShutdownOutcome,
  ShutdownRequest,
  ShutdownSummary,
} from './lifecycle.js';
export { defaults } from './options.js';
export type {
  DrainOptions,
  ExitCodeOptions,
  PrestopOptions,
  ProbeOptions,
  PropagationOptions,
  ResolvedSettings,
} from './options.js';
export { KubegraceError } from './errors.js';
export type { KubegraceErrorCode } from './errors.js';
export type { Lease } from './drain/leases.js';
export type { DrainObserver, CloseReason, ConnectionProtocol, PacedProtocol } from './drain/observer.js';
export type { PacedStep } from './drain/pacer.js';
export type { Check } from './probes/checks.js';
export type { RouteHandler } from './probes/handler.js';
export type { PropagationReport } from './propagation/adaptive.js';
export type { Logger } from './log.js';
export type { GracePeriodSource, KillTimeSource, Timing, Trigger, TriggerKind } from './timing.js';
export type { Integration } from './host.js';
export { createJsonLogger } from './log.js';
