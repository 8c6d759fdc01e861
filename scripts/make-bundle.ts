/**
 * `npm run bundle`: the platform bundle, for hosts that cannot reach the package registry.
 *
 *   node dist/scripts/make-bundle.js [--version X.Y.Z] [--out DIR]
 *
 * Packs this (built) tree exactly as `npm pack` does, unpacks the package into a staging folder,
 * installs its production dependencies there at the versions of package-lock.json (`npm ci
 * --omit=dev`: this platform's optional native packages only), keeps only this platform's Temporal
 * core bridge, and writes DIR/defenseclaw-upgrade-<v>-<platform>-<arch>.tar.gz (one top folder,
 * defenseclaw-upgrade-<v>/) and its line in DIR/SHA256SUMS (sha256sum format; the lines of other
 * platforms' bundles already there are kept). `--version` stamps another version into the
 * bundle's package.json (tests build two versions from one tree that way). Install:
 *
 *   tar -xzf defenseclaw-upgrade-<v>-linux-x64.tar.gz -C <root>/versions/<v> --strip-components=1
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import semver from 'semver';
import * as tar from 'tar';

const TREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAME = 'defenseclaw-upgrade';

class UsageError extends Error {}

interface Options {
  version?: string;
  out: string;
}

function options(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { version: { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  if (values.version !== undefined && semver.valid(values.version) !== values.version) {
    throw new UsageError(`--version must be a version such as 1.2.3, got ${JSON.stringify(values.version)}`);
  }
  return { version: values.version, out: path.resolve(values.out ?? path.join(TREE, 'bundle')) };
}

/** npm with an argument array; a failure is one line (npm's own last error line). */
async function npm(args: string[], cwd: string): Promise<string> {
  const r = await execa('npm', args, { cwd, reject: false });
  if (r.exitCode !== 0) {
    const why =
      r.stderr
        .split('\n')
        .filter((l) => l.trim())
        .pop() ?? `exit code ${r.exitCode}`;
    throw new Error(`npm ${args[0]} failed in ${cwd}: ${why}`);
  }
  return r.stdout;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** Bytes and files under dir (symlinks counted, not followed). */
async function usage(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isDirectory()) continue;
    files += 1;
    bytes += (await fsp.lstat(path.join(e.parentPath, e.name))).size;
  }
  return { bytes, files };
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** Removes every other platform's prebuilt core bridge; returns the one kept. */
async function keepThisPlatformsBridge(top: string): Promise<string> {
  const bridge = path.join(top, 'node_modules', '@temporalio', 'core-bridge');
  // The bridge's own mapping of this os/arch to its releases/<target> folder, as it loads it.
  const common = createRequire(path.join(bridge, 'package.json'))('./common.js') as {
    getPrebuiltTargetName(): string;
  };
  const target = common.getPrebuiltTargetName();
  const releases = path.join(bridge, 'releases');
  const present = await fsp.readdir(releases);
  if (!present.includes(target))
    throw new Error(`the core bridge has no prebuilt ${target} (has ${present.join(', ')})`);
  for (const name of present) if (name !== target) await fsp.rm(path.join(releases, name), { recursive: true });
  return target;
}

/** DIR/SHA256SUMS with this file's line replaced (other files' lines kept). */
async function writeSums(out: string, file: string, digest: string): Promise<void> {
  const sums = path.join(out, 'SHA256SUMS');
  const keep = (await fsp.readFile(sums, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l.trim() && !l.endsWith(`  ${file}`));
  const tmp = `${sums}.tmp-${process.pid}`;
  await fsp.writeFile(
    tmp,
    [...keep, `${digest}  ${file}`].sort((a, b) => a.slice(66).localeCompare(b.slice(66))).join('\n') + '\n',
  );
  await fsp.rename(tmp, sums);
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  for (const f of ['dist/client/main.js', 'dist/workflow-bundle.cjs']) {
    if (!fs.existsSync(path.join(TREE, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
  }
  const t0 = performance.now();
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dcu-bundle-'));
  try {
    // The package as `npm pack` makes it (its files list); the tree is built already.
    const packed = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], TREE);
    const [info] = JSON.parse(packed) as Array<{ filename: string }>;
    const pkgVersion = (JSON.parse(await fsp.readFile(path.join(TREE, 'package.json'), 'utf8')) as { version: string })
      .version;
    const version = opts.version ?? pkgVersion;
    const topName = `${NAME}-${version}`;
    const top = path.join(tmp, 'stage', topName);
    await fsp.mkdir(top, { recursive: true });
    await tar.x({ file: path.join(tmp, info!.filename), cwd: top, strip: 1 });

    const pkgFile = path.join(top, 'package.json');
    const pkg = JSON.parse(await fsp.readFile(pkgFile, 'utf8')) as Record<string, unknown>;
    pkg.version = version;
    await fsp.writeFile(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
    await fsp.chmod(path.join(top, 'dist', 'client', 'main.js'), 0o755);

    // The production dependencies at the locked versions, for this platform only.
    await fsp.copyFile(path.join(TREE, 'package-lock.json'), path.join(top, 'package-lock.json'));
    await npm(['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], top);
    await fsp.rm(path.join(top, 'package-lock.json'));
    const target = await keepThisPlatformsBridge(top);

    const file = `${topName}-${process.platform}-${process.arch}.tar.gz`;
    await fsp.mkdir(opts.out, { recursive: true });
    const outFile = path.join(opts.out, file);
    const partial = `${outFile}.tmp-${process.pid}`;
    await tar.c({ gzip: { level: 9 }, file: partial, cwd: path.dirname(top), portable: true }, [topName]);
    await fsp.rename(partial, outFile);
    await writeSums(opts.out, file, await sha256(outFile));

    const size = (await fsp.stat(outFile)).size;
    const unpacked = await usage(top);
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    process.stdout.write(
      `make-bundle: ${outFile}\n` +
        `  ${mib(size)} packed, ${mib(unpacked.bytes)} unpacked, ${unpacked.files} files; core bridge ${target} only; ${s} s\n` +
        `  ${path.join(opts.out, 'SHA256SUMS')}\n`,
    );
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`make-bundle: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
