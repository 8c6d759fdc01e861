/**
 * The proven stop (activities/host/gateway.ts stopGateway), called on simulated hosts as the host
 * worker calls it: the watchdog and the gateway named by the pid file gone, nothing answering /health
 * at the gateway's configured address (what `defenseclaw-gateway status` asks), and a gateway that
 * will not stop refused with its pid named. The rogue watchdog that outlives `stop` is in upgrade.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createActivities } from '../activities/host/index.js';
import { loadHostConfig } from '../worker/host-config.js';
import { pidAlive } from '../activities/host/gateway-process.js';
import { createSimHost, freePort, type SimHost, type SimHostOptions } from './fixtures/host/sim-host.js';

const hosts: SimHost[] = [];
after(async () => {
  for (const h of hosts) await h.cleanup();
});

async function simHost(opts: SimHostOptions = {}) {
  const sim = await createSimHost(opts);
  hosts.push(sim);
  return { sim, a: createActivities(loadHostConfig({ ...sim.env, DEFENSECLAW_HOST: 'stop-test' })) };
}

const readPid = async (sim: SimHost, name: string): Promise<number> => {
  const t = (await fs.readFile(path.join(sim.dataDir, name), 'utf8')).trim();
  return /^\d+$/.test(t) ? Number(t) : (JSON.parse(t) as { pid: number }).pid;
};

describe('the proven stop', { concurrency: 1 }, () => {
  it('stops the watchdog and the gateway of the pid file; nothing answers /health afterwards; safe to run again', async () => {
    const { sim, a } = await simHost();
    const gateway = await readPid(sim, 'gateway.pid');
    const watchdog = await readPid(sim, 'watchdog.pid');
    const r = await a.stopGateway();
    assert.deepEqual(r, { wasRunning: true, stateBefore: 'running' });
    assert.equal(pidAlive(gateway), false, 'the gateway is gone');
    assert.equal(pidAlive(watchdog), false, 'the watchdog is gone');
    assert.equal(await sim.health(), null);
    assert.notEqual((await sim.gatewayStatus()).exitCode, 0, '`status` agrees');
    assert.deepEqual(await sim.daemonPids(), []);
    assert.deepEqual(await a.stopGateway(), { wasRunning: false, stateBefore: 'unreachable' });
  });

  it('refuses when something still answers /health at the configured address after the stop', async () => {
    const { sim, a } = await simHost();
    // Another server on the address config.yaml names (the gateway keeps the port it started on).
    const port = await freePort();
    const server = http.createServer((_req, res) => res.end('{"gateway":{"state":"running"}}'));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const file = path.join(sim.dataDir, 'config.yaml');
      const yaml = await fs.readFile(file, 'utf8');
      assert.match(yaml, new RegExp(`api_port: ${sim.port}\\b`));
      await fs.writeFile(file, yaml.replace(new RegExp(`api_port: ${sim.port}\\b`), `api_port: ${port}`));
      await assert.rejects(a.stopGateway(), (err: Error) => {
        assert.equal((err as { type?: string }).type, 'StopNotProven');
        assert.match(err.message, /still answers \/health on its port/);
        return true;
      });
      assert.deepEqual(await sim.daemonPids(), [], 'the gateway itself was stopped');
    } finally {
      server.close();
    }
  });

  it('a gateway that ignores SIGTERM and whose `stop` gives up is refused, its pid named', async () => {
    const { sim, a } = await simHost({ faults: { gateway: { '0.3.0': { stop: 'hang', stopTimeoutMs: 300 } } } });
    await sim.waitHealthy(20_000);
    const gateway = await readPid(sim, 'gateway.pid');
    await assert.rejects(a.stopGateway(), (err: Error) => {
      assert.equal((err as { type?: string }).type, 'StopNotProven');
      assert.match(
        err.message,
        new RegExp(`pid ${gateway} is still alive after \`defenseclaw-gateway stop\` \\(exit 1\\)`),
      );
      return true;
    });
    assert.equal(pidAlive(gateway), true);
  });
});
