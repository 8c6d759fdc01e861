/**
 * The Runtime's log collector flushes on demand (worker/log-collector.ts): an entry logged through
 * the SDK's logger (what the Worker, activities and workflows use) still reaches ours after the
 * SDK's ~100 ms ordering delay, in order, and nothing wakes the process while no entry waits
 * (the SDK's own collector flushes from a 100 ms interval, forever).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Runtime } from '@temporalio/worker';
import { installRuntime } from '../worker/runtime.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the log collector without its clock', () => {
  // Every interval created while the Runtime is installed, and how often each one fired.
  const fired: number[] = [];
  const realSetInterval = globalThis.setInterval;
  globalThis.setInterval = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const i = fired.push(0) - 1;
    return realSetInterval(
      (...a: unknown[]) => {
        fired[i] = fired[i]! + 1;
        fn(...a);
      },
      ms,
      ...args,
    );
  }) as typeof setInterval;
  const lines: Array<{ at: number; line: string }> = [];
  installRuntime({ level: 'INFO', write: (line) => lines.push({ at: Date.now(), line }), env: {} });
  globalThis.setInterval = realSetInterval;

  // No worker ever registers with this Runtime, so nothing shuts it down by itself.
  after(() => Runtime.instance().shutdown());

  it('delivers the SDK logger entries, in order, once matured', async () => {
    const t0 = Date.now();
    Runtime.instance().logger.info('first entry');
    Runtime.instance().logger.warn('second entry');
    assert.equal(lines.length, 0, 'held for ordering, as the SDK does');
    const deadline = Date.now() + 2000;
    while (lines.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(
      lines.map((l) => /(first|second) entry/.exec(l.line)?.[0]),
      ['first entry', 'second entry'],
    );
    const delay = lines[1]!.at - t0;
    assert.ok(delay >= 90 && delay < 1000, `delivered after ${delay} ms`);
  });

  it('delivers an entry logged long after the previous one', async () => {
    await sleep(400);
    const before = lines.length;
    Runtime.instance().logger.info('a later entry');
    const deadline = Date.now() + 2000;
    while (lines.length === before && Date.now() < deadline) await sleep(10);
    assert.match(lines.at(-1)?.line ?? '', /a later entry/);
  });

  it('does not wake the process while nothing waits', async () => {
    await sleep(200);
    const total = () => fired.reduce((s, n) => s + n, 0);
    const start = total();
    await sleep(600);
    assert.equal(total() - start, 0, `intervals fired ${total() - start} times in 600 ms of idle`);
  });
});
