/**
 * A ring's soak keeps its history bounded (soakRing continues as new, carrying its baseline): on a
 * server that suggests continue-as-new at 500 events and terminates a run at 2,000, a soak of 200
 * hosts (~700 events a reading, a reading every ~7 s for 20 s) must still end with one result, over several runs,
 * and still see a counter that climbs after it continued (the baseline was carried).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { resolveWorkflowCode } from '../worker/worker.js';
import type { soakRing, SoakResult } from '../workflows/fleet/ring-soak.js';
import { startTestEnvironment } from './helpers/temporal.js';

const HOSTS = Array.from({ length: 200 }, (_, i) => `soak-${i + 1}`);
const QUEUE = `soak-history-${process.pid}`;

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
/** The counter each host's /health reports; `climbAfter` readings of a host make it climb. */
const reads = new Map<string, number>();
let climbAfter = Infinity;

before(async () => {
  env = await startTestEnvironment({
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 500, 'limit.historyCount.error': 2000 },
  });
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: QUEUE,
    ...resolveWorkflowCode(),
    activities: {
      // Every host reads on the one shared queue (the plan's taskQueue); the gate reads a counter.
      readGate: async () => {
        const n = (reads.get('n') ?? 0) + 1;
        reads.set('n', n);
        return {
          subsystems: { gateway: 'running' },
          counters: { 'connector.errors': n > climbAfter ? 1 : 0 },
        };
      },
    },
    maxConcurrentActivityTaskExecutions: 200,
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running?.catch(() => undefined);
  await env?.teardown();
});

async function soak(id: string): Promise<{ result: SoakResult; runs: number[] }> {
  reads.clear();
  const handle = await env.client.workflow.start<typeof soakRing>('soakRing', {
    taskQueue: QUEUE,
    workflowId: id,
    args: [
      {
        ring: 'big',
        hosts: HOSTS,
        // Long enough that the readings after the baseline happen even on a loaded machine.
        soakSeconds: 20,
        gates: { counters: ['connector.errors'], subsystems: true, operatorCheck: false },
        unreachableSeconds: 30,
        taskQueue: QUEUE,
      },
    ],
  });
  const result = await handle.result();
  const runs: number[] = [];
  for await (const w of env.client.workflow.list({ query: `WorkflowId = '${id}'` }))
    runs.push((await env.client.workflow.getHandle(id, w.runId).describe()).historyLength);
  return { result, runs };
}

describe('ring soak history', () => {
  it('a soak longer than one run of history continues as new and passes', async () => {
    climbAfter = Infinity;
    const { result, runs } = await soak(`soak-pass-${process.pid}`);
    assert.equal(result.ok, true, JSON.stringify(result.failures.slice(0, 3)));
    assert.ok(result.checks >= 3, `checks ${result.checks}`);
    assert.ok(runs.length >= 2, `runs ${runs.join(', ')}`);
    for (const len of runs) assert.ok(len < 2000, `a run's history ${len}`);
  });

  it('a counter that climbs after the soak continued still fails the gate (the baseline was carried)', async () => {
    // The baseline is the first 200 reads; the counter climbs from the third reading on.
    climbAfter = HOSTS.length * 2;
    const { result, runs } = await soak(`soak-climb-${process.pid}`);
    assert.equal(result.ok, false);
    assert.match(result.failures[0]!.reason, /counter connector\.errors climbed from 0 to 1/);
    assert.ok(runs.length >= 2, `runs ${runs.join(', ')}`);
  });
});
