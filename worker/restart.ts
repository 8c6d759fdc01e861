/**
 * A process's own restart under the launcher: an activity (updateUpgrader) asks for it, the
 * foreground worker honours it after the activity's result was delivered (a short delay, then a
 * graceful shutdown) and the process exits 75, which the launcher reads as "start me again on
 * the current version".
 */
export const RESTART_EXIT_CODE = 75;

type Handler = () => void;
let handler: Handler | undefined;
let requested = false;

/** Registered by the foreground worker: how to stop gracefully. Returns the unregister function. */
export function onRestartRequested(fn: Handler): () => void {
  handler = fn;
  return () => {
    if (handler === fn) handler = undefined;
  };
}

/** Whether this process can honour a restart (a foreground worker registered how). */
export function restartAvailable(): boolean {
  return handler !== undefined;
}

/** Whether a restart was asked for (the foreground worker then exits 75). */
export function restartRequested(): boolean {
  return requested;
}

/** Asks this process to stop gracefully and exit 75 after `delayMs`; false when nothing can honour it. */
export function requestRestart(delayMs = 1000): boolean {
  if (!handler) return false;
  requested = true;
  const fn = handler;
  setTimeout(fn, delayMs).unref();
  return true;
}
