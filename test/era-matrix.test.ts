/**
 * Source → target across every release era, each on its own simulated host against a release server
 * laid out as the real releases were: what each upgrade ends in, printed as a table (the closing
 * note's matrix). The real builds (0.4.0 → 0.5.0) are in real-defenseclaw.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Harness } from './helpers/harness.js';

const VERSIONS = ['0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.6.1', '0.7.0', '0.8.3', '0.8.4', '0.8.5', '0.8.10'];

interface Case {
  from: string;
  to: string;
  outcome: 'upgraded' | 'failed-unchanged';
  /** The hops an upgrade takes (its bridge), or the refusal's words. */
  expect: RegExp;
}

const CASES: Case[] = [
  { from: '0.3.0', to: '0.6.0', outcome: 'upgraded', expect: /upgraded from 0\.3\.0 to 0\.6\.0; gateway healthy/ },
  { from: '0.4.0', to: '0.6.1', outcome: 'upgraded', expect: /upgraded from 0\.4\.0 to 0\.6\.1; gateway healthy/ },
  { from: '0.5.0', to: '0.8.3', outcome: 'upgraded', expect: /upgraded from 0\.5\.0 to 0\.8\.3; gateway healthy/ },
  { from: '0.6.1', to: '0.8.4', outcome: 'upgraded', expect: /upgraded from 0\.6\.1 to 0\.8\.4; gateway healthy/ },
  { from: '0.8.4', to: '0.8.10', outcome: 'upgraded', expect: /upgraded from 0\.8\.4 to 0\.8\.10; gateway healthy/ },
  {
    from: '0.8.3',
    to: '0.8.10',
    outcome: 'upgraded',
    expect: /upgraded from 0\.8\.3 to 0\.8\.10 through 0\.8\.4 \(bridge\)/,
  },
  {
    from: '0.4.0',
    to: '0.8.5',
    outcome: 'upgraded',
    expect: /upgraded from 0\.4\.0 to 0\.8\.5 through 0\.8\.4 \(bridge\)/,
  },
  // Outside the signed test matrix of the release, as the real upgrader refuses them.
  { from: '0.3.0', to: '0.8.4', outcome: 'failed-unchanged', expect: /was not tested from 0\.3\.0/ },
  { from: '0.7.0', to: '0.8.10', outcome: 'failed-unchanged', expect: /was not tested from 0\.7\.0/ },
];

describe('era matrix: source → target', { concurrency: 2, timeout: 900_000 }, () => {
  let h: Harness;
  const rows: string[] = [];
  before(async () => {
    h = await Harness.start({ versions: VERSIONS });
  });
  after(async () => {
    await h?.close();
    process.stdout.write(`# era matrix (simulated hosts, eras as the real releases):\n${rows.sort().join('\n')}\n`);
  });

  for (const c of CASES) {
    it(`${c.from} → ${c.to}: ${c.outcome}`, async () => {
      const host = await h.host({ version: c.from, extraEnv: { DEFENSECLAW_ALLOW_NO_COSIGN: '1' } });
      const r = await host.result(await host.upgrade({ version: c.to, options: { healthTimeoutSeconds: 30 } }));
      rows.push(`  ${c.from.padEnd(7)} → ${c.to.padEnd(7)} ${r.outcome.padEnd(17)} ${r.message.slice(0, 110)}`);
      assert.equal(r.outcome, c.outcome, r.message);
      assert.match(r.message, c.expect);
      const expected = c.outcome === 'upgraded' ? c.to : c.from;
      assert.equal(await host.sim.gatewayVersion(), expected);
      assert.equal((await host.sim.health())?.provenance?.binary_version, expected);
      assert.equal(await host.sim.venvPackageVersion(), expected);
      await host.stopWorker();
      await host.sim.cleanup();
    });
  }
});
