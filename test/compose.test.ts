/**
 * docker-compose.yml matches the cluster the test suite runs (test/helpers/cluster.ts): the same
 * server version, and the same files from deploy/temporal/ (schema setup, server settings, dynamic
 * config, namespace and search attributes), mounted rather than copied. And it passes
 * `docker-compose config`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import YAML from 'yaml';
import { SEARCH_ATTRIBUTES } from '../workflows/types.js';
import { DEPLOY_DIR, TEMPORAL_SERVER_VERSION, readEnvFile } from './helpers/cluster.js';

const ROOT = path.resolve(DEPLOY_DIR, '..', '..');
const FILE = path.join(ROOT, 'docker-compose.yml');
const MOUNT = '/etc/defenseclaw/temporal';

interface Service {
  image?: string;
  entrypoint?: string[];
  volumes?: string[];
  env_file?: string[];
  environment?: Record<string, string>;
}
const compose = YAML.parse(fs.readFileSync(FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> };
const svc = (name: string): Service => {
  const s = compose.services[name];
  assert.ok(s, `service ${name}`);
  return s;
};

describe('docker-compose.yml agrees with the tested cluster', () => {
  it('runs the server version the tests build (server and admin tools)', () => {
    for (const name of ['temporal', 'temporal-admin-tools', 'temporal-create-namespace']) {
      const tag = /:\$\{[A-Z_]+:-([^}]+)\}$/.exec(svc(name).image ?? '')?.[1];
      assert.equal(tag, TEMPORAL_SERVER_VERSION, `${name}: ${svc(name).image}`);
    }
    assert.match(svc('temporal').image!, /^temporalio\/server:/);
  });

  it('mounts deploy/temporal and runs its scripts, settings and dynamic config', () => {
    for (const name of ['temporal', 'temporal-admin-tools', 'temporal-create-namespace']) {
      assert.ok(svc(name).volumes?.includes(`./deploy/temporal:${MOUNT}:ro`), `${name} mounts deploy/temporal`);
    }
    assert.deepEqual(svc('temporal-admin-tools').entrypoint, ['/bin/sh', `${MOUNT}/setup-schema.sh`]);
    assert.deepEqual(svc('temporal-create-namespace').entrypoint, ['/bin/sh', `${MOUNT}/register-namespace.sh`]);
    const server = svc('temporal');
    assert.deepEqual(server.env_file, ['./deploy/temporal/server.env']);
    assert.equal(server.environment?.DYNAMIC_CONFIG_FILE_PATH, `${MOUNT}/dynamicconfig.yaml`);
    // No server setting is set in compose beside the shared file (only addresses and credentials).
    const shared = readEnvFile(path.join(DEPLOY_DIR, 'server.env'));
    for (const k of Object.keys(shared)) assert.ok(!(k in (server.environment ?? {})), `${k} only in server.env`);
    assert.equal(shared.DB, 'postgres12');
    assert.ok(Number(shared.NUM_HISTORY_SHARDS) > 1, 'several history shards');
    for (const f of ['setup-schema.sh', 'register-namespace.sh', 'server.env', 'dynamicconfig.yaml']) {
      assert.ok(fs.existsSync(path.join(DEPLOY_DIR, f)), f);
    }
    YAML.parse(fs.readFileSync(path.join(DEPLOY_DIR, 'dynamicconfig.yaml'), 'utf8'));
  });

  it('register-namespace.sh creates exactly the search attributes of SEARCH_ATTRIBUTES, as Keyword', () => {
    const text = fs.readFileSync(path.join(DEPLOY_DIR, 'register-namespace.sh'), 'utf8');
    const list = /^SEARCH_ATTRIBUTES='([A-Za-z ]+)'$/m.exec(text);
    assert.ok(list, 'the list is there');
    assert.deepEqual(list[1]!.split(/\s+/).sort(), Object.values(SEARCH_ATTRIBUTES).sort());
    assert.match(text, /search-attribute create -n "\$ns" --name "\$name" --type Keyword/);
  });

  it('passes `docker-compose config`', async () => {
    const r = await execa('docker-compose', ['-f', FILE, '--profile', 'worker', 'config', '--quiet'], {
      reject: false,
      cwd: ROOT,
    });
    assert.notEqual(
      (r as { code?: string }).code,
      'ENOENT',
      'docker-compose is not installed: apt-get install docker-compose (.ci/run does)',
    );
    assert.equal(r.exitCode, 0, String(r.stderr));
  });
});
