export { createKubegrace } from './kubegrace.js';
export type {
  Hook,
  HookOptions,
  Kubegrace,
  KubegraceOptions,
  WebSocketClientLike,
  WebSocketServerLike,
} from './kubegrace.js';
export { createLifecycle, PHASES } from './lifecycle.js';
export type {
  Lifecycle,
  LifecycleEvents,
  LifecycleOptions,
  LifecycleState,
  Participant,
  ParticipantResult,
  PhaseContext,
  PhaseName,
  ShutdownOutcome,
  ShutdownRequest,
  ShutdownSummary,
} from './lifecycle.js';
export { defaults, resolveSettings, settingSpecs, shutdownBudget, checkBudget } from './options.js';
export type {
  BudgetTerm,
  DrainOptions,
  ExitCodeOptions,
  KubegraceSettings,
  ProbeOptions,
  PropagationOptions,
  ResolvedSettings,
  SettingSpec,
} from './options.js';
export { KubegraceError } from './errors.js';
export type { KubegraceErrorCode } from './errors.js';
export type { Lease } from './drain/leases.js';
export type { DrainObserver, CloseReason, ConnectionProtocol } from './drain/observer.js';
export type { Check } from './probes/checks.js';
export type { RouteHandler } from './probes/handler.js';
export type { PropagationConfirmation } from './propagation/adaptive.js';
export type { Logger } from './log.js';
export { createJsonLogger } from './log.js';
