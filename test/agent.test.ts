/**
 * The local agent end to end: started detached in a temporary DEFENSECLAW_HOME, private files,
 * reused, reported, refused for another release source, replaced after a crash, stopped with no
 * process left behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { connectTemporal } from '../client/temporal.js';
import { AGENT_WORKFLOW_QUEUE } from '../workflows/types.js';
import { agentStatus, ensureAgent, stopAgent } from '../worker/agent/agent.js';
import { WORKER_GLIBC_TUNABLES, WORKER_NODE_OPTIONS } from '../worker/runtime-tuning.js';
import { agentPaths, type AgentInfo } from '../worker/agent/agent-files.js';
import { isAlive } from '../worker/agent/processes.js';
import { DEFAULT_WORKFLOW_BUNDLE, DEFAULT_WORKFLOWS_PATH } from '../worker/worker.js';
import { parseWorkerIdentity } from '../worker/identity.js';
import { TOOL_VERSION } from '../worker/tool-version.js';
import { temporalCliPath } from './helpers/temporal.js';

const SECRET = 'ghp_agentTestSecret0123456789';
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-agent-'));
const dataDir = path.join(home, '.defenseclaw');
const pids = new Set<number>();

const built = fs.existsSync(DEFAULT_WORKFLOW_BUNDLE) || fs.existsSync(DEFAULT_WORKFLOWS_PATH);

after(async () => {
  await stopAgent(dataDir, { graceMs: 5000 }).catch(() => undefined);
  for (const pid of pids) {
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  fs.rmSync(home, { recursive: true, force: true });
});

async function env(): Promise<NodeJS.ProcessEnv> {
  return {
    PATH: process.env.PATH,
    HOME: home,
    DEFENSECLAW_HOME: dataDir,
    DEFENSECLAW_HOST: 'agent-test-host',
    TEMPORAL_CLI_PATH: await temporalCliPath(),
    GITHUB_TOKEN: SECRET,
  };
}

function mode(p: string): string {
  return (fs.statSync(p).mode & 0o777).toString(8);
}

function track(info: AgentInfo): AgentInfo {
  pids.add(info.pid);
  if (info.serverPid) pids.add(info.serverPid);
  return info;
}

describe('the local agent', { skip: built ? false : 'workflows are not built (npm run build)' }, () => {
  let first: AgentInfo;

  test('ensureAgent starts a detached agent with private files and no secret in them', async (t) => {
    const t0 = Date.now();
    // Two callers at once: one starts the agent, the other waits for it and reuses it.
    const both = await Promise.all([ensureAgent({ env: await env() }), ensureAgent({ env: await env() })]);
    first = track(both.find((a) => !a.reused)!);
    t.diagnostic(`agent ready in ${Date.now() - t0} ms (dev server ${first.serverStartMs} ms)`);
    assert.deepEqual(both.map((a) => a.reused).sort(), [false, true]);
    assert.equal(both[0]!.pid, both[1]!.pid);
    assert.equal(first.state, 'ready');
    assert.ok(isAlive(first.pid) && first.serverPid && isAlive(first.serverPid));
    assert.match(first.address ?? '', /^127\.0\.0\.1:\d+$/);
    assert.match(first.uiUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(first.host, 'agent-test-host');
    assert.equal(first.upgraderVersion, TOOL_VERSION);
    assert.equal(first.taskQueue, 'defenseclaw-upgrade@agent-test-host');
    assert.equal(first.releases?.repo, 'cisco-ai-defense/defenseclaw');

    const p = agentPaths(dataDir);
    assert.equal(mode(p.dir), '700');
    assert.equal(mode(p.temporalDir), '700');
    for (const f of [p.pidFile, p.infoFile, p.logFile]) assert.equal(mode(f), '600', f);
    assert.equal(Number(fs.readFileSync(p.pidFile, 'utf8')), first.pid);
    // It runs with the service's runtime tuning (worker/runtime-tuning.ts). glibc's loader rewrites
    // GLIBC_TUNABLES in place once it has read it, so /proc/<pid>/environ may show only its start.
    if (process.platform === 'linux') {
      const environ = fs.readFileSync(`/proc/${first.pid}/environ`, 'utf8').split('\0');
      const tunables = environ.find((e) => e.startsWith('GLIBC_TUNABLES=glibc.'));
      assert.ok(
        tunables && `GLIBC_TUNABLES=${WORKER_GLIBC_TUNABLES}`.startsWith(tunables),
        `the agent has the malloc tuning (${tunables})`,
      );
      assert.ok(
        fs.readFileSync(`/proc/${first.pid}/cmdline`, 'utf8').split('\0').includes(WORKER_NODE_OPTIONS),
        'the agent has the small young generation',
      );
    }
    for (const f of [p.infoFile, p.logFile])
      assert.ok(!fs.readFileSync(f, 'utf8').includes(SECRET), `${f} has no token`);

    // The workflows poll the agent's queue; this host's queue has its activities only.
    const c = await connectTemporal({ address: first.address, useEnvConfig: false });
    const pollers = async (name: string, taskQueueType: number) =>
      (await c.client.workflowService.describeTaskQueue({ namespace: c.namespace, taskQueue: { name }, taskQueueType }))
        .pollers?.length ?? 0;
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        // 1: TASK_QUEUE_TYPE_WORKFLOW, 2: TASK_QUEUE_TYPE_ACTIVITY
        if ((await pollers(AGENT_WORKFLOW_QUEUE, 1)) > 0 && (await pollers(first.taskQueue!, 2)) > 0) break;
        assert.ok(Date.now() < deadline, 'the workflow worker and the host worker poll');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await pollers(first.taskQueue!, 1), 0, 'no workflow poller on the host queue');
      // Each worker reports this package's version and its role in its identity.
      const identities = async (name: string, taskQueueType: number) =>
        (
          (
            await c.client.workflowService.describeTaskQueue({
              namespace: c.namespace,
              taskQueue: { name },
              taskQueueType,
            })
          ).pollers ?? []
        ).map((p) => parseWorkerIdentity(p.identity ?? ''));
      assert.deepEqual(await identities(AGENT_WORKFLOW_QUEUE, 1), [
        { version: TOOL_VERSION, role: 'agent', host: 'agent-test-host', pid: first.pid },
      ]);
      assert.deepEqual(await identities(first.taskQueue!, 2), [
        { version: TOOL_VERSION, role: 'host', host: 'agent-test-host', pid: first.pid },
      ]);
    } finally {
      await c.close();
    }
  });

  test('a second ensureAgent reuses it; status reports it', async () => {
    const again = await ensureAgent({ env: await env() });
    assert.equal(again.reused, true);
    assert.equal(again.pid, first.pid);
    assert.equal(again.address, first.address);
    const st = await agentStatus(dataDir);
    assert.equal(st.running, true);
    assert.equal(st.info?.pid, first.pid);
    assert.equal(st.info?.state, 'ready');
  });

  test('another release source is refused with the way out', async () => {
    await assert.rejects(ensureAgent({ env: { ...(await env()), DEFENSECLAW_REPO: 'someone/else' } }), (err: Error) => {
      assert.match(err.message, /run `defenseclaw-upgrade agent stop` first$/);
      assert.match(err.message, /someone\/else/);
      return true;
    });
  });

  test('an explicit port in use is the one-line error', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const otherHome = path.join(home, 'other');
    try {
      await assert.rejects(
        ensureAgent({ env: { ...(await env()), DEFENSECLAW_HOME: otherHome }, temporalPort: port }),
        (err: Error) =>
          err.message === `port ${port} is in use; choose another with --temporal-port or stop what uses it`,
      );
    } finally {
      blocker.close();
    }
  });

  test('a killed agent is replaced and its orphaned dev server cleaned up', async () => {
    process.kill(first.pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (isAlive(first.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(isAlive(first.pid), false);
    assert.equal((await agentStatus(dataDir)).running, false);

    const second = track(await ensureAgent({ env: await env() }));
    assert.equal(second.reused, false);
    assert.notEqual(second.pid, first.pid);
    assert.equal(isAlive(first.serverPid!), false, 'the orphaned dev server is gone');
    first = second;
  });

  test('stopAgent stops it and leaves no process behind', async () => {
    const res = await stopAgent(dataDir);
    assert.deepEqual(res, { stopped: true, pid: first.pid, forced: false });
    assert.equal(isAlive(first.pid), false);
    assert.equal(isAlive(first.serverPid!), false);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} is gone`);
    const p = agentPaths(dataDir);
    assert.equal(fs.existsSync(p.pidFile), false);
    const st = await agentStatus(dataDir);
    assert.equal(st.running, false);
    assert.equal(st.info?.state, 'stopped');
    assert.deepEqual(await stopAgent(dataDir), { stopped: false, pid: first.pid, forced: false });
  });
});
