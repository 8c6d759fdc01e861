/**
 * npm run bench -- self-update
 *
 * Time from the start of a host worker's self-update (updateUpgrader scheduled by a workflow on
 * the host's queue) to that queue being polled by the new version (Temporal lists the new
 * process among its pollers: the ready mark the launcher waits for), median of BENCH_RUNS (3)
 * runs, each on a fresh upgrader root (a real worker A under the launcher, B fetched from a local
 * bundle mirror, verified, unpacked, switched, restarted). Also the bundle's size.
 * Not a timed test: it prints figures, it does not pass or fail on them.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { taskQueueForHost } from '../workflows/types.js';
import { startTestEnvironment } from '../test/helpers/temporal.js';
import { link, makeTestBundle, makeVersion, readyMark, startLauncher, until } from '../test/helpers/upgrader.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const A = '0.2.0';
const B = '0.2.1';
const TEST_WORKFLOWS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'test',
  'workflows',
  'upgrader.js',
);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function benchSelfUpdate(): Promise<string[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-bench-self-update-'));
  const env = await startTestEnvironment();
  const mirrorDir = path.join(tmp, 'mirror');
  fs.mkdirSync(mirrorDir);
  const bundle = await makeTestBundle(B, mirrorDir);
  const bundleMb = (fs.statSync(bundle.file).size / 1024 / 1024).toFixed(1);
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
  const connection = await NativeConnection.connect({ address: env.address });
  const namespace = env.namespace ?? 'default';
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: 'bench-self-update',
    workflowsPath: TEST_WORKFLOWS,
  });
  const running = worker.run();
  const total: number[] = [];
  const install: number[] = [];
  const restart: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const root = path.join(tmp, `root-${i}`);
      const home = path.join(root, 'home');
      fs.mkdirSync(home, { recursive: true });
      makeVersion(root, A, 'real');
      link(root, 'current', A);
      const host = `bench-self-update-${i}`;
      const launcher = startLauncher(root, ['worker'], {
        PATH: process.env.PATH,
        HOME: home,
        DEFENSECLAW_HOME: path.join(home, '.defenseclaw'),
        DEFENSECLAW_HOST: host,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: namespace,
        DEFENSECLAW_UPGRADER_ROOT: root,
        DEFENSECLAW_UPGRADER_BUNDLE_URL: mirrorUrl,
      });
      try {
        await until(() => readyMark(root, A), 60_000, 'A polling');
        const t0 = Date.now();
        await env.client.workflow.execute('updateUpgraderOnHost', {
          taskQueue: 'bench-self-update',
          workflowId: `bench-self-update-${i}-${process.pid}`,
          args: [taskQueueForHost(host), B],
        });
        const t1 = Date.now();
        const mark = await until(() => readyMark(root, B), 120_000, `B polling (${launcher.stderr()})`);
        const t2 = Date.parse(mark.at);
        total.push(t2 - t0);
        install.push(t1 - t0);
        restart.push(t2 - t1);
        process.stderr.write(
          `run ${i + 1}: ${s(t2 - t0)} (install and switch ${s(t1 - t0)}, restart to a poll ${s(t2 - t1)})\n`,
        );
      } finally {
        await launcher.stop();
      }
    }
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    mirror.closeAllConnections();
    mirror.close();
    await env.teardown();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return [
    `self-update of a host worker (median of ${RUNS}), start → the host's queue polled by the new version: ${s(median(total))}`,
    `  of which install and switch (fetch from a local mirror, verify, unpack, switch; the activity's result): ${s(median(install))}`,
    `  and restart (graceful stop of the old worker, start of the new one, its first poll listed by Temporal): ${s(median(restart))}`,
    `  the test bundle (this tree, production dependencies, one platform's core bridge): ${bundleMb} MiB`,
  ];
}
