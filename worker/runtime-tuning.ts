/**
 * The runtime tuning the service gives the worker process (the systemd unit, the launchd plist), and
 * that the worker keeps out of the commands it runs: OpenClaw is a Node application and the
 * DefenseClaw gateway links the C library; both run as their operator configured them, not with a
 * small worker's settings (npm run bench -- idle measures what each buys the worker).
 */

/** A small young generation: an idle worker's resident memory drops by ~30 MB. One flag (the local agent is started with it as an argument). */
export const WORKER_NODE_OPTIONS = '--max-semi-space-size=1';

/**
 * glibc's malloc with fixed thresholds: the ~7 MB that start-up frees (compiling the SDK's protobuf
 * descriptors) goes back to the system instead of staying pinned under later allocations by the
 * dynamic thresholds; ~10 MB less resident memory. Ignored by other C libraries.
 */
export const WORKER_GLIBC_TUNABLES = 'glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072';

/** The service's tuning as environment variables. */
export const WORKER_TUNING_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: WORKER_NODE_OPTIONS,
  GLIBC_TUNABLES: WORKER_GLIBC_TUNABLES,
};

/** True for a variable that is only the worker's own tuning (an operator's other value is kept). */
export function isWorkerTuning(name: string, value: string): boolean {
  return WORKER_TUNING_ENV[name] === value;
}
