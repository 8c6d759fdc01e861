/**
 * The secrets a host's worker scrubs from its logs, read from a data dir laid out as real
 * DefenseClaw leaves it: 0.8.10's `init` writes `gateway.token_env` and the `*_env` names of its
 * API keys into config.yaml, and the gateway's first start writes DEFENSECLAW_GATEWAY_TOKEN into
 * `.env` (EnsureGatewayToken); config.yaml then holds no token at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REDACTED, Scrubber } from '../worker/logging.js';
import { collectSecrets, gatewayTokensFrom, readDotEnv } from '../worker/host-secrets.js';
import { REAL_0810_CONFIG } from './fixtures/host/real-0810-home.js';

describe('the secrets of a host as real DefenseClaw lays it out', () => {
  let dir: string;
  const token = randomBytes(32).toString('hex'); // EnsureGatewayToken: 32 random bytes, hex
  const llmKey = `sk-ant-${randomBytes(12).toString('hex')}`;
  const ciscoKey = randomBytes(16).toString('base64');

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-host-secrets-'));
    await fs.writeFile(path.join(dir, 'config.yaml'), REAL_0810_CONFIG, { mode: 0o600 });
    // appendEnvLine's KEY=VALUE lines, with what an operator adds by hand: quotes, export, comments.
    await fs.writeFile(
      path.join(dir, '.env'),
      [
        '# DefenseClaw secrets',
        `DEFENSECLAW_LLM_KEY="${llmKey}"`,
        `export CISCO_AI_DEFENSE_API_KEY='${ciscoKey}'`,
        'DEFENSECLAW_LOG_FORMAT=json-lines-verbose',
        'not an assignment',
        `DEFENSECLAW_GATEWAY_TOKEN=${token}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('reads .env as the real gateway does (trimmed, unquoted once, comments and junk skipped)', () => {
    const env = readDotEnv(dir);
    assert.equal(env.get('DEFENSECLAW_GATEWAY_TOKEN'), token);
    assert.equal(env.get('DEFENSECLAW_LLM_KEY'), llmKey);
    assert.equal(env.get('CISCO_AI_DEFENSE_API_KEY'), ciscoKey);
    assert.equal(env.size, 4);
  });

  it("finds the gateway token in .env through config.yaml's token_env, not in config.yaml", () => {
    assert.deepEqual(gatewayTokensFrom(dir, {}), [token]);
  });

  it('takes the token from the environment first, as ResolvedToken does, and keeps the .env one too', () => {
    const fromEnv = `env-${randomBytes(12).toString('hex')}`;
    assert.deepEqual(gatewayTokensFrom(dir, { DEFENSECLAW_GATEWAY_TOKEN: fromEnv }), [fromEnv, token]);
  });

  it('follows a token_env that names another variable, and the pre-0.4 OPENCLAW_GATEWAY_TOKEN', async () => {
    const other = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-host-secrets-'));
    try {
      await fs.writeFile(path.join(other, 'config.yaml'), 'gateway:\n  token_env: GW_SECRET_FOR_THIS_HOST\n');
      await fs.writeFile(path.join(other, '.env'), 'GW_SECRET_FOR_THIS_HOST = "custom-0123456789"\n');
      assert.deepEqual(gatewayTokensFrom(other, {}), ['custom-0123456789']);
      assert.ok(collectSecrets({ env: {}, dataDir: other }).includes('custom-0123456789'));
      await fs.writeFile(path.join(other, '.env'), 'OPENCLAW_GATEWAY_TOKEN=legacy-0123456789\n');
      assert.deepEqual(gatewayTokensFrom(other, {}), ['legacy-0123456789']);
    } finally {
      await fs.rm(other, { recursive: true, force: true });
    }
  });

  it('takes every variable a `*_env` key of config.yaml names as a secret, from the environment or .env', async () => {
    const other = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-host-secrets-'));
    try {
      await fs.writeFile(
        path.join(other, 'config.yaml'),
        'llm:\n  api_key_env: "ANTHROPIC_FOR_DC"\naudit_sinks:\n  - kind: splunk_hec\n    hec_token_env: HEC_FOR_DC # set in the unit\n',
      );
      await fs.writeFile(
        path.join(other, '.env'),
        'ANTHROPIC_FOR_DC=anthropic-value-0123\nPLAIN_SETTING=plain-value-0123\n',
      );
      const secrets = collectSecrets({ env: { HEC_FOR_DC: 'hec-value-0123456' }, dataDir: other });
      assert.ok(secrets.includes('anthropic-value-0123'), 'named by llm.api_key_env, set in .env');
      assert.ok(secrets.includes('hec-value-0123456'), 'named by a sink, set in the environment');
      assert.ok(!secrets.includes('plain-value-0123'), 'a setting nothing names a secret');
    } finally {
      await fs.rm(other, { recursive: true, force: true });
    }
  });

  it("scrubs the gateway token and .env's API keys from a log line, and leaves other settings alone", () => {
    const s = new Scrubber(collectSecrets({ env: {}, dataDir: dir }));
    const line = `gateway said token=${token} llm=${llmKey} cisco=${ciscoKey} format=json-lines-verbose`;
    assert.equal(
      s.text(line),
      `gateway said token=${REDACTED} llm=${REDACTED} cisco=${REDACTED} format=json-lines-verbose`,
    );
  });
});
