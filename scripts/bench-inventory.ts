/**
 * npm run bench -- inventory: `fleet inventory` of BENCH_INVENTORY_HOSTS (2,000) stub hosts on
 * one shared queue (the inventory input's `taskQueue`), each readInventory a sleep of
 * BENCH_FLEET_STUB_MS, run by a real `fleet worker` process (the controller, with its controller
 * activities: visibility for every host) on a real dev server. Prints the wall time, the
 * controller's RSS (before, peak, after) and the history lengths (parent and largest batch).
 * Not a timed test: it prints figures.
 */
import os from 'node:os';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { fleetInventory } from '../workflows/fleet/inventory.js';
import { WORKFLOW_INVENTORY, type HostReport } from '../workflows/fleet/inventory-types.js';
import { FLEET_TASK_QUEUE } from '../workflows/fleet/fleet-types.js';
import { spawnFleetWorker } from '../test/helpers/fleet-sim.js';
import { startTestEnvironment } from '../test/helpers/temporal.js';
import { STUB_MS, log, num, rssMiB, sec } from './bench-fleet-common.js';

const HOSTS = num('BENCH_INVENTORY_HOSTS', 2000);
const VERSIONS = ['0.3.0', '0.3.1', '0.4.0'];

async function main(): Promise<void> {
  log(
    `inventory benchmark on ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const env = await startTestEnvironment();
  const queue = `bench-inventory-stubs-${process.pid}`;
  let n = 0;
  const stub = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: queue,
    activities: {
      readInventory: async (): Promise<HostReport> => {
        await new Promise((r) => setTimeout(r, STUB_MS));
        const v = VERSIONS[n++ % VERSIONS.length]!;
        return {
          gatewayVersion: v,
          wheelVersion: v,
          era: 'goreleaser',
          upgraderVersion: '0.2.0',
          health: { state: 'running', subsystems: { gateway: 'running' } },
        };
      },
    },
    maxConcurrentActivityTaskExecutions: 400,
    shutdownGraceTime: '1s',
  });
  const stubRunning = stub.run();
  const proc = spawnFleetWorker(env.address, env.namespace ?? 'default');
  try {
    await proc.ready;
    const hosts = Array.from({ length: HOSTS }, (_, i) => `stub-${i + 1}`);
    const before = await rssMiB(proc.child.pid);
    let peak = before ?? 0;
    const sampler = setInterval(() => void rssMiB(proc.child.pid).then((r) => (peak = Math.max(peak, r ?? 0))), 250);
    const id = `bench-inventory-${process.pid}`;
    log(`\n${HOSTS} stub hosts on one shared queue (${queue}), each answer a ${STUB_MS} ms sleep`);
    const t0 = Date.now();
    const result = await env.client.workflow.execute<typeof fleetInventory>(WORKFLOW_INVENTORY, {
      taskQueue: FLEET_TASK_QUEUE,
      workflowId: id,
      args: [{ hosts, taskQueue: queue, answerSeconds: 60 }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    });
    const wall = Date.now() - t0;
    clearInterval(sampler);
    const after = await rssMiB(proc.child.pid);
    const ok = result.hosts.filter((h) => h.status === 'ok').length;
    const parent = (await env.client.workflow.getHandle(id).describe()).historyLength;
    let largest = 0;
    for await (const w of env.client.workflow.list({ query: `WorkflowType = 'inventoryBatch'` })) {
      const d = await env.client.workflow.getHandle(w.workflowId, w.runId).describe();
      largest = Math.max(largest, d.historyLength);
    }
    log(`  answered: ${ok} of ${result.hosts.length} hosts`);
    log(`  wall time: ${sec(wall)}`);
    log(`  controller (fleet worker) RSS: ${before} MiB before, ${peak} MiB peak, ${after} MiB after`);
    log(`  history: parent ${parent} events, largest batch ${largest} events`);
    log(
      JSON.stringify({
        hosts: HOSTS,
        ok,
        wallMs: wall,
        rssMiB: { before, peak, after },
        history: { parent, largestBatch: largest },
      }),
    );
  } finally {
    await proc.stop();
    stub.shutdown();
    await stubRunning.catch(() => undefined);
    await env.teardown();
  }
}

main().catch((err) => {
  process.stderr.write(`bench-inventory failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
