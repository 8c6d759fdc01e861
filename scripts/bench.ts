/**
 * npm run bench            single-host figures (below)
 * npm run bench -- fleet   the fleet benchmark (scripts/bench-fleet.ts)
 * npm run bench -- self-update   a host worker's self-update, start → its queue polled by the new version (scripts/bench-self-update.ts)
 * npm run bench -- self-update-fleet   a fleet moving 3 hosts' workers A → B (scripts/bench-self-update-fleet.ts)
 * npm run bench -- inventory  `fleet inventory` of 2,000 stub hosts (scripts/bench-inventory.ts)
 * npm run bench -- idle    idle cost of a host worker and of the local agent, wake time (scripts/bench-idle.ts)
 *
 * Single host, measured in one run on this machine, each figure the median of RUNS runs:
 *  1. downtime ratio: gateway downtime during our upgrade (first /health poll that is not
 *     running → first poll running the new version) divided by the downtime of a bare
 *     `defenseclaw-gateway stop; start` of the same gateway, measured by the same poller.
 *  2. wall ratio: the whole upgrade through Temporal (real dev server, real worker) divided by
 *     the same activities called directly in sequence, without Temporal.
 *  3. npm run bench -- real: the real DefenseClaw gateway (../shared/realdc), 0.4.0 → 0.5.0 and
 *     0.8.4 → 0.8.10, beside bare restarts of FROM and TO, under a subreaper (scripts/bench-real.ts).
 * Not a timed test: it prints figures and ratios, it does not pass or fail on them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { createActivities } from '../activities/host/index.js';
import { installRuntime } from '../worker/runtime.js';
import { Harness, type HostUnderTest } from '../test/helpers/harness.js';
import type { ArtifactInfo } from '../workflows/types.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** Polls /health every 10 ms; answers the longest window in which the gateway was not serving `version`. */
function downtimeProbe(port: number, version?: string, healthy: string[] = ['running']) {
  let stop = false;
  let downSince: number | undefined;
  let longest = 0;
  const loop = (async () => {
    while (!stop) {
      let ok = false;
      try {
        const res = await request(`http://127.0.0.1:${port}/health`, {
          headersTimeout: 500,
          bodyTimeout: 500,
        });
        const body = (await res.body.json()) as {
          gateway?: { state?: string };
          provenance?: { binary_version?: string };
        };
        ok =
          healthy.includes(body.gateway?.state ?? '') &&
          (!version ||
            !body.provenance?.binary_version ||
            body.provenance.binary_version === version ||
            downSince === undefined);
      } catch {
        ok = false;
      }
      const now = performance.now();
      if (!ok && downSince === undefined) downSince = now;
      if (ok && downSince !== undefined) {
        longest = Math.max(longest, now - downSince);
        downSince = undefined;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async done(): Promise<number> {
      stop = true;
      await loop;
      return longest;
    },
  };
}

/** The same steps as workflows/host/upgrade.ts, called directly: the no-Temporal baseline. */
async function directUpgrade(host: HostUnderTest, runId: string): Promise<void> {
  const a = createActivities(host.config);
  await a.checkHost({ host: host.name });
  const release = await a.resolveRelease({});
  const from = (await a.readInstalledVersion()).version;
  const platform = await a.detectPlatform();
  const { stagingId } = await a.createStaging({ runId });
  const to = release.version;
  const layout = release.layout!;
  const expected = new Map<string, string | undefined>([
    ['checksums.txt', layout.checksums?.sha256],
    [
      layout.gateways[`${platform.os}/${platform.arch}`]!.name,
      layout.gateways[`${platform.os}/${platform.arch}`]!.sha256,
    ],
    [layout.wheel.name, layout.wheel.sha256],
  ]);
  const sizes = await a.preflight({ version: to, platform, names: [...expected.keys()] });
  const artifacts: ArtifactInfo[] = [];
  for (const { name, size } of sizes) {
    const sha256 = expected.get(name);
    artifacts.push(
      await a.downloadArtifact({ version: to, stagingId, name, size, verify: name !== 'checksums.txt', sha256 }),
    );
  }
  await a.verifySignature({ version: to, stagingId, signed: false });
  const staged = await a.stageGateway({ version: to, stagingId, platform });
  const venv = await a.prepareVenv({ version: to, stagingId });
  const backupId = `upgrade-${new Date().toISOString().replace(/[-:]/g, '').replace('.', '')}`;
  await a.createBackup({ backupId, fromVersion: from, toVersion: to });
  await a.stopGateway();
  await a.installGateway({ stagingId, sha256: staged.sha256 });
  await a.switchVenv({ venvId: venv.venvId, backupId });
  await a.runMigrations({ fromVersion: from, toVersion: to });
  await a.startGateway({ healthTimeoutSeconds: 60 });
  await a.restartOpenclaw();
  await a.waitHealthy({ version: to, timeoutSeconds: 60 });
  await a.removeStaging({ stagingId });
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;

async function single(): Promise<void> {
  installRuntime({ level: 'WARN' });
  const h = await Harness.start();
  const bare: number[] = [];
  const ours: number[] = [];
  const wallTemporal: number[] = [];
  const wallDirect: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      // Bare restart of the same gateway.
      const b = await h.host();
      const probe = downtimeProbe(b.sim.port);
      await new Promise((r) => setTimeout(r, 100));
      await b.sim.stopGateway();
      await b.sim.startGateway();
      await b.sim.waitHealthy(30_000);
      await new Promise((r) => setTimeout(r, 50));
      bare.push(await probe.done());

      // Our upgrade through Temporal.
      const t = await h.host();
      const p2 = downtimeProbe(t.sim.port, '0.4.0');
      const t0 = performance.now();
      const r = await t.result(await t.upgrade());
      wallTemporal.push(performance.now() - t0);
      await new Promise((r2) => setTimeout(r2, 50));
      ours.push(await p2.done());
      if (r.outcome !== 'upgraded') throw new Error(`bench upgrade failed: ${r.message}`);

      // The same activities, directly.
      const d = await h.host();
      const p3 = downtimeProbe(d.sim.port, '0.4.0');
      const t1 = performance.now();
      await directUpgrade(d, `bench-${i}-${Date.now()}`);
      wallDirect.push(performance.now() - t1);
      await new Promise((r3) => setTimeout(r3, 50));
      direct.push(await p3.done());
      process.stderr.write(
        `run ${i + 1}/${RUNS}: bare ${ms(bare[i]!)}, ours ${ms(ours[i]!)}, temporal ${ms(wallTemporal[i]!)}, direct ${ms(wallDirect[i]!)}\n`,
      );
    }
  } finally {
    await h.close();
  }
  const downtimeRatio = median(ours) / median(bare);
  const wallRatio = median(wallTemporal) / median(wallDirect);
  process.stdout.write(
    [
      `single-host benchmark (${RUNS} runs each, medians, this machine)`,
      `  gateway downtime, bare stop+start:     ${ms(median(bare))}`,
      `  gateway downtime, our upgrade:         ${ms(median(ours))}`,
      `  downtime ratio (target <= 1.2):        ${downtimeRatio.toFixed(2)}`,
      `  downtime, same steps without Temporal: ${ms(median(direct))} (ratio ${(median(direct) / median(bare)).toFixed(2)}: the window's own work)`,
      `  upgrade wall time through Temporal:    ${ms(median(wallTemporal))}`,
      `  same activities called directly:      ${ms(median(wallDirect))}`,
      `  wall ratio (target <= 1.3):            ${wallRatio.toFixed(2)}`,
      '',
    ].join('\n'),
  );
}

/** uv from the project cache (as `npm test` installs it) goes on PATH for the hosts' Python environments. */
function uvOnPath(): void {
  const cache =
    process.env.DEFENSECLAW_CACHE_DIR ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'defenseclaw-upgrade');
  const dir = path.join(cache, 'uv-0.13.9', 'bin');
  if (fs.existsSync(path.join(dir, 'uv'))) process.env.PATH = `${dir}${path.delimiter}${process.env.PATH ?? ''}`;
}

async function main(): Promise<void> {
  uvOnPath();
  if (process.argv[2] === 'fleet' || process.argv[2] === 'inventory') {
    await import(process.argv[2] === 'fleet' ? './bench-fleet.js' : './bench-inventory.js');
    return;
  }
  if (process.argv[2] === 'self-update-fleet') {
    const { benchSelfUpdateFleet } = await import('./bench-self-update-fleet.js');
    process.stdout.write(`${(await benchSelfUpdateFleet()).join('\n')}\n`);
    return;
  }
  if (process.argv[2] === 'self-update') {
    const { benchSelfUpdate } = await import('./bench-self-update.js');
    process.stdout.write(`${(await benchSelfUpdate()).join('\n')}\n`);
    return;
  }
  // What the upgrader costs an idle host (scripts/bench-idle.ts).
  if (!process.argv[2] || process.argv[2] === 'idle') {
    const idle = await import('./bench-idle.js');
    process.stdout.write(`${[...(await idle.benchHostWorkers()), ...(await idle.benchAgent())].join('\n')}\n`);
    if (process.argv[2] === 'idle') return;
  }
  if (process.argv[2] !== 'real') await single();
  // The real gateway SIGTERMs every process named defenseclaw-gateway: after the simulated runs.
  if (process.argv[2] !== 'sim') await (await import('./bench-real.js')).benchReal();
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
