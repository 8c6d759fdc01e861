/**
 * Supervision of the worker a run needs. On one machine the CLI watching an upgrade notices that
 * the local agent's worker is gone (here SIGKILLed, once mid-download and once in the downtime
 * window), says so in one line, starts it again and the upgrade finishes, once. `status` says
 * when the agent died; a run whose worker stays gone past --stuck-after ends STUCK with its step
 * and the host's state. An uncaught error in a worker process is logged scrubbed with what was
 * running, and the process exits non-zero.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { connectTemporal } from '../client/temporal.js';
import { FATAL_EXIT_CODE } from '../worker/crash-guard.js';
import { readAgentInfo } from '../worker/agent/agent-files.js';
import { isAlive } from '../worker/agent/processes.js';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { CLI_MAIN as CLI, runCli } from './helpers/cli.js';
import { temporalCliPath } from './helpers/temporal.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CRASH_CHILD = path.join(HERE, 'helpers', 'crash-child.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cli = (args: string[], env: Record<string, string>) => runCli(args, env, 180_000);

let releases: ReleaseServer;
let host: SimHost;
let env: Record<string, string>;
const dataDir = () => env.DEFENSECLAW_HOME!;

before(async () => {
  // Downloads slow enough to kill the worker in the middle; a new gateway that reports `starting`
  // for a while, so that the downtime window lasts long enough to kill it there too.
  releases = await startReleaseServer({ throttleBytesPerSec: 1024 });
  host = await createSimHost({ version: '0.3.0', faults: { gateway: { '0.3.1': { healthDelayMs: 12_000 } } } });
  env = {
    ...host.env,
    ...releases.env(),
    DEFENSECLAW_HOST: 'sup-host',
    NO_COLOR: '1',
    GITHUB_TOKEN: 'ghp_supervisionSecret0123456789abc',
  };
  // The project's Temporal CLI (the simulated HOME has no cache of its own).
  env.TEMPORAL_CLI_PATH = await temporalCliPath();
});

after(async () => {
  await cli(['agent', 'stop'], env).catch(() => undefined);
  await host?.cleanup();
  await releases?.close();
});

/** The activity the host's run is executing now, and its last heartbeat (from the server; no worker needed). */
async function pendingActivity(
  address: string,
): Promise<{ name?: string; beat?: { offset?: number; total?: number } } | undefined> {
  const c = await connectTemporal({ address, useEnvConfig: false });
  try {
    const d = await c.client.workflow.getHandle('defenseclaw-upgrade-sup-host').describe();
    // Not the hold of DefenseClaw's upgrade lock, which runs beside the steps from the backup on (issue 20).
    const a = d.raw.pendingActivities?.find((p) => p.activityType?.name !== 'holdNativeLock');
    const payload = a?.heartbeatDetails?.payloads?.[0];
    const beat = payload ? (defaultPayloadConverter.fromPayload(payload as never) as { offset?: number }) : undefined;
    return { name: a?.activityType?.name ?? undefined, beat };
  } catch {
    return undefined;
  } finally {
    await c.close();
  }
}

async function killAgentDuring(
  activity: string | string[],
  timeoutMs: number,
  cli: { output: () => string; exited: () => boolean },
): Promise<{ pid: number; at: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await readAgentInfo(dataDir());
    if (info?.state === 'ready' && info.address && isAlive(info.pid)) {
      const now = await pendingActivity(info.address);
      // A download is killed once some of its bytes are on disk (so the next attempt resumes).
      const partway =
        now?.name !== 'downloadArtifact' || ((now.beat?.offset ?? 0) > 0 && now.beat!.offset! < now.beat!.total!);
      if (now?.name && [activity].flat().includes(now.name) && partway) {
        if (now.name !== 'downloadArtifact') await sleep(1000); // well inside it
        process.kill(info.pid, 'SIGKILL');
        return { pid: info.pid, at: Date.now() };
      }
    }
    if (Date.now() > deadline || cli.exited()) {
      throw new Error(`the run never reached ${String(activity)}: ${cli.output()}`);
    }
    await sleep(200);
  }
}

describe('the CLI supervises the local agent', () => {
  it('restarts a worker killed mid-download and in the downtime window; the upgrade finishes once', async () => {
    const child = spawn(process.execPath, [CLI, '--yes', '--version', '0.3.1', '--json'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const lines: Array<{ at: number; line: string }> = [];
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => {
      stderr += String(d);
      for (const line of String(d).split('\n').filter(Boolean)) lines.push({ at: Date.now(), line });
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const when = async (re: RegExp, after: number, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines.find((l) => l.at >= after && re.test(l.line));
        if (hit) return hit.at;
        if (Date.now() > deadline) throw new Error(`no line ${re} in: ${stderr}`);
        await sleep(50);
      }
    };

    const timings: string[] = [];
    for (const activity of ['downloadArtifact', ['startGateway', 'waitHealthy']]) {
      const kill = await killAgentDuring(activity, 120_000, {
        output: () => stderr,
        exited: () => child.exitCode !== null,
      });
      const noticed = await when(
        new RegExp(`the local agent's worker \\(pid ${kill.pid}\\) is gone; restarting it`),
        0,
      );
      await when(/restarted the local agent \(pid \d+\)/, noticed);
      const resumed = await when(/the run resumed [\d.]+ s after the worker was found gone/, noticed);
      timings.push(
        `${[activity].flat().join('/')}: noticed ${noticed - kill.at} ms after the kill, resumed after ${resumed - kill.at} ms`,
      );
      assert.ok(noticed - kill.at < 5000, `noticed within 5 s (${noticed - kill.at} ms)`);
    }
    process.stderr.write(`# supervision timings: ${timings.join('; ')}\n`);

    assert.equal(await exited, 0, stderr);
    const result = JSON.parse(stdout) as { outcome: string; to: string };
    assert.equal(result.outcome, 'upgraded');
    assert.equal(await host.gatewayVersion(), '0.3.1');
    // Exactly once: one workflow, one backup, and each noticing said in one line.
    const hist = await cli(['history', '--host', 'sup-host', '--json'], env);
    assert.equal((JSON.parse(hist.stdout) as unknown[]).length, 1, hist.stdout);
    const backups = await cli(['backups', '--json'], env);
    assert.equal((JSON.parse(backups.stdout) as unknown[]).length, 1, backups.stdout);
    assert.equal(lines.filter((l) => /is gone; restarting it/.test(l.line)).length, 2, stderr);
    // The download resumed where the killed attempt left it.
    assert.ok(
      releases.requests.some((r) => r.kind === 'asset' && r.range && /^bytes=[1-9]/.test(r.range)),
      'a Range request resumed the download',
    );
    assert.ok(!stderr.includes(env.GITHUB_TOKEN!), 'no token on the terminal');
  });

  it('status says the agent died, and restarts it', async () => {
    const info = await readAgentInfo(dataDir());
    assert.ok(info && isAlive(info.pid));
    process.kill(info.pid, 'SIGKILL');
    await sleep(200);
    const r = await cli(['status', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`the local agent \\(pid ${info.pid}\\) died; restarting it`));
    assert.equal((JSON.parse(r.stdout) as { outcome: string }).outcome, 'upgraded');
  });

  it('a run whose worker cannot come back ends STUCK with its step and the host state', async () => {
    // The next upgrade (back to 0.3.0 is not an upgrade: use a rollback-free path) is 0.3.1 → 0.4.0,
    // watched with a short bound; the agent is killed mid-download and cannot be restarted (no
    // Temporal CLI on the PATH it is given), so the run never resumes.
    const child = spawn(process.execPath, [CLI, '--yes', '--version', '0.4.0', '--json', '--stuck-after', '8'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const kill = await killAgentDuring('downloadArtifact', 120_000, {
      output: () => stderr,
      exited: () => child.exitCode !== null,
    });
    // Make every restart fail: the agent's start lock is held by a live process (this test).
    fs.writeFileSync(path.join(dataDir(), 'agent', 'start.lock'), String(process.pid));
    try {
      assert.equal(await exited, 1, stderr);
    } finally {
      fs.rmSync(path.join(dataDir(), 'agent', 'start.lock'), { force: true });
    }
    assert.match(stderr, new RegExp(`the local agent's worker \\(pid ${kill.pid}\\) is gone; restarting it`));
    const report = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(report.stuck, true);
    assert.equal(report.activity, 'downloadArtifact');
    assert.match(String(report.step), /^download /);
    assert.equal(report.hostState, 'before-stop');
    assert.equal(report.stuckAfterS, 8);
    assert.ok(Number(report.workerGoneForS) >= 8);
    assert.match(stderr, /is stuck: its worker has been gone for \d+ s \(bound 8 s\)/);
    assert.equal(await host.gatewayVersion(), '0.3.1', 'the host was left as it was');
  });
});

describe('an uncaught error in a worker process', () => {
  for (const kind of ['throw', 'reject'] as const) {
    it(`${kind}: logged scrubbed with the running activity; the process exits ${FATAL_EXIT_CODE}`, async () => {
      const secret = 'ghp_crashGuardSecret0123456789abcdef';
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(process.execPath, [CRASH_CHILD, kind], {
          env: { PATH: process.env.PATH ?? '', GITHUB_TOKEN: secret },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        c.stderr.on('data', (d) => (stderr += String(d)));
        c.once('exit', (code) => resolve({ code, stderr }));
      });
      assert.equal(r.code, FATAL_EXIT_CODE, r.stderr);
      assert.match(r.stderr, /worker process dying: (uncaught exception|unhandled rejection) Error: socket ended/);
      assert.match(r.stderr, /while running downloadArtifact \(defenseclaw-upgrade-h1, attempt 2\)/);
      assert.ok(!r.stderr.includes(secret), 'the token was scrubbed');
    });
  }
});
