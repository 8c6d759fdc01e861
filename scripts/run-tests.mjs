// `npm test` (after the pretest build, lint and Temporal CLI check): puts a pinned uv from PyPI
// in the project cache for the simulated hosts' Python environments, then runs node's test
// runner over every compiled test file. `npm test -- upgrade fleet` runs only matching files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const UV_VERSION = '0.13.9';
const cacheDir =
  process.env.DEFENSECLAW_CACHE_DIR ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'defenseclaw-upgrade');
const uvDir = path.join(cacheDir, `uv-${UV_VERSION}`);
const uv = path.join(uvDir, 'bin', 'uv');

if (!fs.existsSync(uv)) {
  process.stderr.write(`run-tests: installing uv ${UV_VERSION} into ${uvDir}\n`);
  const r = spawnSync(
    'python3',
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', uvDir, `uv==${UV_VERSION}`],
    { stdio: 'inherit' },
  );
  if (r.status !== 0 || !fs.existsSync(uv)) {
    process.stderr.write(
      'run-tests: could not install uv; the simulated hosts fall back to python3 -m venv + pip (slower)\n',
    );
  }
}

const filters = process.argv.slice(2);
const files = fs
  .readdirSync('dist/test')
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
  .map((f) => path.join('dist/test', f));
if (files.length === 0) {
  process.stderr.write(`run-tests: no test file matches ${filters.join(' ')}\n`);
  process.exit(2);
}

// The cluster tests (test/cluster-*.test.ts) need PostgreSQL and a Temporal server built from its
// Go module: build it (once, into the project cache) before any test runs, so that no test's
// timeout includes a four-minute build.
if (files.some((f) => path.basename(f).startsWith('cluster-'))) {
  const t0 = Date.now();
  const c = spawnSync(process.execPath, ['dist/scripts/cluster.js', 'ensure'], { stdio: 'inherit' });
  if (c.status !== 0) {
    process.stderr.write('run-tests: the cluster tests cannot run (see above)\n');
    process.exit(1);
  }
  process.stderr.write(`run-tests: cluster prerequisites ready in ${Math.round((Date.now() - t0) / 1000)} s\n`);
}

// The real DefenseClaw gateway's `start` SIGTERMs every process whose command line names
// `defenseclaw-gateway`, simulated gateways included: real-*.test files run alone, after the others.
const env = { ...process.env, PATH: `${path.dirname(uv)}${path.delimiter}${process.env.PATH ?? ''}` };
const isReal = (f) => path.basename(f).startsWith('real-');
const phases = [
  { files: files.filter((f) => !isReal(f)), concurrency: 2 },
  { files: files.filter(isReal), concurrency: 1 },
].filter((p) => p.files.length > 0);
let status = 0;
for (const phase of phases) {
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${phase.concurrency}`, ...phase.files], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
