/**
 * For the cluster tests: the real CLI (`node dist/client/main.js`) pointed at a cluster through a
 * user's environment, waiting, and the checks of a host's final state.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { SimHost } from '../fixtures/host/sim-host.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'client', 'main.js');

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A CLI bound to one environment (TEMPORAL_* of a cluster), with its own empty HOME. */
export function clusterCli(
  env: Record<string, string>,
): (args: string[], extra?: Record<string, string>) => Promise<CliRun> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-cluster-cli-'));
  return async (args, extra = {}) => {
    const r = await execa(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, NO_COLOR: '1', ...env, ...extra },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 180_000,
    });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
}

/** Polls `fn` until it answers something truthy (errors count as not yet). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The host runs `version`, healthy, and says so in /health's provenance. */
export async function assertHostOn(sim: SimHost, version: string, what: string): Promise<void> {
  assert.equal(await sim.gatewayVersion(), version, `${what}: gateway binary`);
  const health = await sim.health();
  assert.equal(health?.gateway.state, 'running', `${what}: gateway healthy`);
  assert.equal(health?.provenance?.binary_version, version, `${what}: /health provenance`);
}

/** The host's upgrade backups (one per upgrade that reached its backup step). */
export async function upgradeBackupsOf(sim: SimHost): Promise<string[]> {
  const names = await fs.promises.readdir(path.join(sim.dataDir, 'backups')).catch(() => [] as string[]);
  return names.filter((d) => d.startsWith('upgrade-'));
}
