/**
 * The options every recorded activity was scheduled with (test/histories/*.json) are one of the
 * kinds of work in workflows/proxies.ts (KIND), exactly: replay checks the order and names of
 * activities but not their timeouts, retries or queues, so a changed KIND (or a call site that
 * sets its own options again) would pass replay and still change what a running fleet does.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { msToNumber } from '@temporalio/common/lib/time.js';
import type { ActivityOptions } from '@temporalio/workflow';
import { KIND } from '../workflows/proxies.js';
import { FLEET_TASK_QUEUE } from '../workflows/fleet/fleet-types.js';

const HISTORIES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'histories');

/** Timeouts and retry as the server records them (its defaults filled in), in ms. */
interface Shape {
  startToClose: number;
  heartbeat: number;
  retry: { initial: number; backoff: number; maximum: number; attempts: number };
}

const seconds = (s: unknown): number => (typeof s === 'string' ? Math.round(parseFloat(s) * 1000) : 0);

function recorded(a: Record<string, unknown>): Shape {
  const r = (a.retryPolicy ?? {}) as Record<string, unknown>;
  return {
    startToClose: seconds(a.startToCloseTimeout),
    heartbeat: seconds(a.heartbeatTimeout),
    retry: {
      initial: seconds(r.initialInterval),
      backoff: Number(r.backoffCoefficient),
      maximum: seconds(r.maximumInterval),
      attempts: Number(r.maximumAttempts),
    },
  };
}

/** A kind's options with the server's retry defaults (1 s, ×2, at most 100 × the first interval). */
function shapeOf(k: ActivityOptions): Shape {
  const initial = k.retry?.initialInterval !== undefined ? msToNumber(k.retry.initialInterval) : 1000;
  return {
    startToClose: msToNumber(k.startToCloseTimeout!),
    heartbeat: k.heartbeatTimeout !== undefined ? msToNumber(k.heartbeatTimeout) : 0,
    retry: {
      initial,
      backoff: k.retry?.backoffCoefficient ?? 2,
      maximum: k.retry?.maximumInterval !== undefined ? msToNumber(k.retry.maximumInterval) : 100 * initial,
      attempts: k.retry?.maximumAttempts ?? 0,
    },
  };
}

/** The kinds whose options `got` are (a kind with a parameter: the one its start-to-close implies). */
function kindsOf(got: Shape): string[] {
  return Object.entries(KIND).flatMap(([name, k]) => {
    const options = typeof k === 'function' ? k(got.startToClose / 1000 - 60) : k;
    return JSON.stringify(shapeOf(options)) === JSON.stringify(got) ? [name] : [];
  });
}

describe('the options of every recorded activity are a kind of workflows/proxies.ts', () => {
  it('each scheduled activity in test/histories matches a KIND exactly; a host activity goes to a host queue', async () => {
    const files = (await fs.readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
    assert.ok(files.length >= 9, 'every recorded history');
    const seen = new Set<string>();
    for (const file of files) {
      const { events } = JSON.parse(await fs.readFile(path.join(HISTORIES_DIR, file), 'utf8')) as {
        events: Array<Record<string, unknown>>;
      };
      for (const e of events) {
        const a = e.activityTaskScheduledEventAttributes as Record<string, unknown> | undefined;
        if (!a) continue;
        const type = (a.activityType as { name: string }).name;
        const queue = (a.taskQueue as { name: string }).name;
        const kinds = kindsOf(recorded(a));
        assert.ok(kinds.length > 0, `${file}: ${type} was scheduled with options of no KIND: ${JSON.stringify(a)}`);
        const controller = kinds.some((k) => ['channel', 'visibility', 'notify', 'queueProof'].includes(k));
        if (file.startsWith('fleet-') || file.startsWith('ring-') || file.startsWith('channel-')) {
          if (controller) assert.equal(queue, FLEET_TASK_QUEUE, `${file}: ${type} on the controller's queue`);
          else assert.match(queue, /^defenseclaw-upgrade@/, `${file}: ${type} on its host's queue`);
        }
        for (const k of kinds) seen.add(k);
      }
    }
    // The fleet's recordings reach these kinds (the host upgrade's reach the others).
    for (const k of ['quick', 'network', 'heartbeating', 'compensating', 'holding', 'resolve', 'probe', 'channel'])
      assert.ok(seen.has(k), `some recorded activity is of kind ${k}`);
  });

  it('a changed option is no KIND: the check can fail', () => {
    const probe = shapeOf(KIND.probe);
    assert.ok(kindsOf(probe).includes('probe'));
    assert.deepEqual(kindsOf({ ...probe, startToClose: probe.startToClose + 1000 }), []);
    assert.deepEqual(kindsOf({ ...probe, retry: { ...probe.retry, attempts: 9 } }), []);
  });
});
