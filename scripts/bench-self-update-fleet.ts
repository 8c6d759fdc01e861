/**
 * npm run bench -- self-update-fleet
 *
 * A fleet keeping its own workers current: wall time of `fleetRollout` with `component: 'worker'`
 * moving HOSTS (3) hosts' workers from A to B at once (canary 0, batch 3, no bake), from the
 * workflow's start to its result (every host's queue proven polled by B through awaitQueueVersion),
 * median of BENCH_RUNS (3) runs; each run on fresh upgrader roots (a real worker A under the
 * launcher, B fetched from a local bundle mirror, verified, unpacked, switched, restarted), with the
 * real controller worker and activities on the fleet queue. Also the slowest host's own time.
 * Not a timed test: it prints figures, it does not pass or fail on them.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { createControllerActivities } from '../activities/controller/controller.js';
import { createWorkflowWorker } from '../worker/worker.js';
import type { fleetRollout } from '../workflows/fleet/fleet.js';
import { FLEET_TASK_QUEUE, type FleetResult } from '../workflows/fleet/fleet-types.js';
import { WORKFLOW_FLEET } from '../workflows/types.js';
import { startTestEnvironment } from '../test/helpers/temporal.js';
import { link, makeTestBundle, makeVersion, readyMark, startLauncher, until } from '../test/helpers/upgrader.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const HOSTS = 3;
const A = '0.2.0';
const B = '0.2.1';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function benchSelfUpdateFleet(): Promise<string[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-bench-fleet-self-update-'));
  const env = await startTestEnvironment();
  const mirrorDir = path.join(tmp, 'mirror');
  fs.mkdirSync(mirrorDir);
  await makeTestBundle(B, mirrorDir);
  const mirror = http.createServer((req, res) => {
    const file = path.join(mirrorDir, path.normalize(decodeURIComponent(req.url ?? '/')).replace(/^(\.\.[/\\])+/, ''));
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-length': String(fs.statSync(file).size) });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
  const mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
  const namespace = env.namespace ?? 'default';
  const controller = await createWorkflowWorker({
    connection: env.nativeConnection,
    namespace,
    taskQueue: FLEET_TASK_QUEUE,
    shutdownGraceTime: '1s',
    activities: createControllerActivities({ HOME: tmp }),
  });
  const running = controller.run();
  const walls: number[] = [];
  const slowest: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const hosts = Array.from({ length: HOSTS }, (_, n) => `bench-fleet-self-${i}-${n + 1}`);
      const launchers = hosts.map((host) => {
        const root = path.join(tmp, host);
        const home = path.join(root, 'home');
        fs.mkdirSync(home, { recursive: true });
        makeVersion(root, A, 'real');
        link(root, 'current', A);
        return {
          root,
          launcher: startLauncher(root, ['worker'], {
            PATH: process.env.PATH,
            HOME: home,
            DEFENSECLAW_HOME: path.join(home, '.defenseclaw'),
            DEFENSECLAW_HOST: host,
            TEMPORAL_ADDRESS: env.address,
            TEMPORAL_NAMESPACE: namespace,
            DEFENSECLAW_UPGRADER_ROOT: root,
            DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl,
            DEFENSECLAW_LOG_LEVEL: 'WARN',
          }),
        };
      });
      try {
        await Promise.all(launchers.map((l) => until(() => readyMark(l.root, A), 90_000, 'A polling')));
        const t0 = Date.now();
        let result: FleetResult;
        try {
          result = await env.client.workflow.execute<typeof fleetRollout>(WORKFLOW_FLEET, {
            taskQueue: FLEET_TASK_QUEUE,
            workflowId: `bench-fleet-self-update-${i}-${process.pid}`,
            args: [
              {
                fleetId: `bench-fleet-self-update-${i}-${process.pid}`,
                hosts,
                version: B,
                component: 'worker',
                canary: 0,
                batch: { count: HOSTS },
                bakeSeconds: 0,
              },
            ],
          });
        } catch (err) {
          const details = err instanceof WorkflowFailedError ? (err.cause as { details?: unknown[] })?.details : [];
          throw new Error(`the fleet failed: ${(details?.[0] as FleetResult | undefined)?.message ?? String(err)}`);
        }
        const wall = Date.now() - t0;
        const longest = Math.max(...result.hosts.map((h) => (h.endedAt ?? 0) - (h.startedAt ?? 0)));
        walls.push(wall);
        slowest.push(longest);
        process.stderr.write(`run ${i + 1}: ${s(wall)} for ${HOSTS} hosts (slowest host ${s(longest)})\n`);
      } finally {
        await Promise.all(launchers.map((l) => l.launcher.stop()));
      }
    }
  } finally {
    controller.shutdown();
    await running;
    mirror.closeAllConnections();
    mirror.close();
    await env.teardown();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return [
    `fleet of ${HOSTS} hosts' workers A → B at once (fleetRollout, component worker; median of ${RUNS}), start → every queue proven polled by B: ${s(median(walls))}`,
    `  the slowest host's own time in it (probe, install and switch, restart, proof): ${s(median(slowest))}`,
  ];
}
