/**
 * Jitter of host starts (issue 14): hosts that a rollout starts together do not all hit their
 * release source, or the controller, in the same second. Each host waits its own delay in
 * 0..jitterMs, a hash of its name: the same on every replay, the same in every rollout (an
 * operator can tell which hosts go first), and spread evenly over the range.
 *
 * Deterministic: the delay is pure, the wait a workflow timer.
 */
import { isCancellation, sleep } from '@temporalio/workflow';

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** How long `host` waits before it starts, in 0..jitterMs (0 when jitter is off). */
export function jitterDelayMs(host: string, jitterMs: number): number {
  if (!(jitterMs > 0)) return 0;
  // Mix the hash once more: FNV-1a's low bits barely change between names that differ in their last character.
  let h = fnv1a(host);
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) % (Math.floor(jitterMs) + 1);
}

/**
 * Waits `host`'s delay (a durable timer, so it replays); false when an abort cancelled it first.
 * No timer at all when jitter is off, so runs without jitter keep their command sequence.
 */
export async function waitJitter(host: string, jitterMs: number): Promise<boolean> {
  const delay = jitterDelayMs(host, jitterMs);
  if (delay === 0) return true;
  try {
    await sleep(delay);
    return true;
  } catch (err) {
    if (isCancellation(err)) return false;
    throw err;
  }
}
