/**
 * One drain observer handed to every drainer, fanning out to the observers added before or after an
 * attach, and counting the connections open on the attached servers (the adaptive wait treats a pod
 * with none as possibly idle). No closure per call: requestStarted/Finished run on every request.
 * An observer that throws must not cost a request or the drain's bookkeeping: warn once, go on.
 */
import type { DrainObserver } from './drain/observer.js';
import { errorText } from './lifecycle.js';
import type { Logger } from './log.js';

export interface ObserverFanout {
  /** The observer the drainers call. */
  readonly observer: DrainObserver;
  readonly observers: Set<DrainObserver>;
  /** Connections open now on the attached servers. */
  readonly openConnections: number;
}

export function createObserverFanout(initial: DrainObserver | undefined, logger: Logger): ObserverFanout {
  let openConnections = 0;
  const observers = new Set<DrainObserver>(initial ? [initial] : []);
  let observerWarned = false;
  const observerThrew = (error: unknown): void => {
    if (observerWarned) return;
    observerWarned = true;
    logger.warn(`an observer threw (further errors are not logged; requests go on): ${errorText(error)}`);
  };
  const observer: DrainObserver = {
    requestStarted() {
      for (const o of observers) {
        try {
          o.requestStarted?.();
        } catch (error) {
          observerThrew(error);
        }
      }
    },
    requestFinished() {
      for (const o of observers) {
        try {
          o.requestFinished?.();
        } catch (error) {
          observerThrew(error);
        }
      }
    },
    connectionOpened(protocol) {
      openConnections++;
      for (const o of observers) {
        try {
          o.connectionOpened?.(protocol);
        } catch (error) {
          observerThrew(error);
        }
      }
    },
    connectionClosed(protocol, reason) {
      if (openConnections > 0) openConnections--;
      for (const o of observers) {
        try {
          o.connectionClosed?.(protocol, reason);
        } catch (error) {
          observerThrew(error);
        }
      }
    },
    pacedClose(protocol, step) {
      for (const o of observers) {
        try {
          o.pacedClose?.(protocol, step);
        } catch (error) {
          observerThrew(error);
        }
      }
    },
  };
  return {
    observer,
    observers,
    get openConnections() {
      return openConnections;
    },
  };
}
