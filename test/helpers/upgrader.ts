/**
 * An upgrader root for tests: versions built cheaply from this tree (a copy of dist/ with a
 * stamped package.json, node_modules linked), broken versions of every kind, and the launcher
 * copied to <root>/launcher.mjs and run as a service manager would run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This tree's root (dist/test/helpers → ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DIST = path.join(REPO_ROOT, 'dist');
export const LAUNCHER_JS = path.join(DIST, 'worker', 'launcher', 'launcher.js');

export type VersionKind =
  /** this tree's code, package.json stamped with the version */
  | 'real'
  /** an entry that exits 3 at once */
  | 'exit-at-start'
  /** an entry that runs forever and never writes ready */
  | 'hang'
  /** a folder with no entry point at all */
  | 'no-entry'
  /** no folder at all (`current` left dangling) */
  | 'missing'
  /** an entry that is not JavaScript */
  | 'garbage';

/** Makes <root>/versions/<version> of the given kind; answers its folder. */
export function makeVersion(root: string, version: string, kind: VersionKind = 'real'): string {
  const dir = path.join(root, 'versions', version);
  if (kind === 'missing') {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    return dir;
  }
  fs.mkdirSync(dir, { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  if (kind === 'no-entry') return dir;
  const main = path.join(dir, 'dist', 'client', 'main.js');
  if (kind === 'real') {
    // A copy, not a link: tool-version.js reads ../../package.json from its real path.
    fs.cpSync(DIST, path.join(dir, 'dist'), {
      recursive: true,
      filter: (src) => !src.startsWith(path.join(DIST, 'test')) && !src.endsWith('.map'),
    });
    fs.symlinkSync(fs.realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(dir, 'node_modules'));
    return dir;
  }
  fs.mkdirSync(path.dirname(main), { recursive: true });
  const code = {
    'exit-at-start': 'process.exit(3);\n',
    hang: 'setInterval(() => {}, 1000);\nprocess.on("SIGTERM", () => {});\n',
    garbage: 'this is } not javascript {\n',
  }[kind];
  fs.writeFileSync(main, code);
  return dir;
}

/** Points <root>/<link> at versions/<version> (relative, as the product does). */
export function link(root: string, name: 'current' | 'previous', version: string): void {
  fs.rmSync(path.join(root, name), { force: true });
  fs.symlinkSync(path.join('versions', version), path.join(root, name));
}

export function linked(root: string, name: 'current' | 'previous'): string | undefined {
  try {
    return path.basename(fs.readlinkSync(path.join(root, name)));
  } catch {
    return undefined;
  }
}

export interface LauncherProcess {
  child: ChildProcess;
  /** Everything the launcher and its child wrote on stderr so far. */
  stderr: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit (SIGKILL after 20 s). */
  stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Copies the launcher to <root>/launcher.mjs (as `worker install` does) and runs it. */
export function startLauncher(root: string, args: string[], env: NodeJS.ProcessEnv): LauncherProcess {
  const dest = path.join(root, 'launcher.mjs');
  if (!fs.existsSync(dest)) fs.copyFileSync(LAUNCHER_JS, dest);
  const child = spawn(process.execPath, [dest, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Polls `fn` every 100 ms until it answers something truthy, or fails after `ms` saying `what`. */
export async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms: number,
  what: string,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The ready mark of a version, parsed ({ pid, identity, at }), or undefined. */
export function readyMark(root: string, version: string): { pid: number; identity: string; at: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'ready', version), 'utf8')) as {
      pid: number;
      identity: string;
      at: string;
    };
  } catch {
    return undefined;
  }
}

/** Writes switch.json and switches the links as updateUpgrader does, by hand (no activity). */
export function switchByHand(root: string, from: string, to: string, deadlineSeconds: number): void {
  fs.writeFileSync(
    path.join(root, 'switch.json'),
    JSON.stringify({ schema: 1, from, to, startedAt: new Date().toISOString(), deadlineSeconds }),
  );
  link(root, 'previous', from);
  link(root, 'current', to);
}

export function reverts(root: string): Array<{ at: string; from: string; to: string; reason: string }> {
  try {
    return fs
      .readFileSync(path.join(root, 'reverts.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { at: string; from: string; to: string; reason: string });
  } catch {
    return [];
  }
}

/**
 * A platform bundle of this tree for tests, laid out as scripts/make-bundle makes one:
 * `<outDir>/<v>/defenseclaw-upgrade-<v>-<platform>-<arch>.tar.gz` under one top folder
 * `defenseclaw-upgrade-<v>/` (package.json stamped with `version`, dist/ without the tests, the
 * production dependencies with only this platform's Temporal core bridge) and `<outDir>/<v>/SHA256SUMS`.
 */
export async function makeTestBundle(version: string, outDir: string): Promise<{ file: string; sha256: string }> {
  const { create } = await import('tar');
  const { createHash } = await import('node:crypto');
  const top = `defenseclaw-upgrade-${version}`;
  const stage = fs.mkdtempSync(path.join(outDir, '.stage-'));
  const tree = path.join(stage, top);
  fs.mkdirSync(path.join(tree, 'node_modules', '@temporalio'), { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(tree, 'package.json'), `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  fs.symlinkSync(DIST, path.join(tree, 'dist'));
  const modules = fs.realpathSync(path.join(REPO_ROOT, 'node_modules'));
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
  };
  for (const [k, v] of Object.entries(lock.packages)) {
    if (!k || v.dev || v.devOptional || v.optional) continue;
    const rel = k.replace(/^node_modules\//, '');
    if (rel.includes('/node_modules/')) continue; // comes with its parent
    fs.mkdirSync(path.dirname(path.join(tree, 'node_modules', rel)), { recursive: true });
    fs.symlinkSync(path.join(modules, rel), path.join(tree, 'node_modules', rel));
  }
  const triple = `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-${process.platform === 'darwin' ? 'apple-darwin' : 'unknown-linux-gnu'}`;
  const skip = (p: string) =>
    /(^|\/)dist\/test(\/|$)/.test(p) ||
    p.endsWith('.map') ||
    /core-bridge\/sdk-core(\/|$)/.test(p) ||
    (/core-bridge\/releases\/[^/]+/.test(p) && !p.includes(`core-bridge/releases/${triple}`));
  const dir = path.join(outDir, version);
  fs.mkdirSync(dir, { recursive: true });
  const name = `defenseclaw-upgrade-${version}-${process.platform}-${process.arch}.tar.gz`;
  const file = path.join(dir, name);
  await create({ file, cwd: stage, gzip: { level: 1 }, follow: true, portable: true, filter: (p) => !skip(p) }, [top]);
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${sha256}  ${name}\n`);
  fs.rmSync(stage, { recursive: true, force: true });
  return { file, sha256 };
}

/** A bundle as makeTestBundle lays it out whose entry point exits 3 at once (a version that cannot start). */
export async function makeBrokenBundle(version: string, outDir: string): Promise<void> {
  const { create } = await import('tar');
  const { createHash } = await import('node:crypto');
  const top = `defenseclaw-upgrade-${version}`;
  const stage = fs.mkdtempSync(path.join(outDir, '.stage-'));
  fs.mkdirSync(path.join(stage, top, 'dist', 'client'), { recursive: true });
  fs.writeFileSync(path.join(stage, top, 'package.json'), JSON.stringify({ name: 'defenseclaw-upgrade', version }));
  fs.writeFileSync(path.join(stage, top, 'dist', 'client', 'main.js'), 'process.exit(3);\n');
  const dir = path.join(outDir, version);
  fs.mkdirSync(dir, { recursive: true });
  const name = `defenseclaw-upgrade-${version}-${process.platform}-${process.arch}.tar.gz`;
  await create({ file: path.join(dir, name), cwd: stage, gzip: true, portable: true }, [top]);
  const sha256 = createHash('sha256')
    .update(fs.readFileSync(path.join(dir, name)))
    .digest('hex');
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${sha256}  ${name}\n`);
  fs.rmSync(stage, { recursive: true, force: true });
}

export interface RawTarEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo';
  body?: string;
  linkpath?: string;
}

/** A gzipped tar written byte by byte (ustar headers), so that a test can put in what tar's own writer refuses to. */
export function rawTarGz(entries: RawTarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  const field = (h: Buffer, off: number, len: number, v: string) => h.write(v.slice(0, len), off, len, 'utf8');
  const octal = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    field(h, 0, 100, e.path);
    field(h, 100, 8, octal(e.type === 'dir' ? 0o755 : 0o644, 8));
    field(h, 108, 8, octal(0, 8));
    field(h, 116, 8, octal(0, 8));
    field(h, 124, 12, octal(e.type === 'file' ? body.length : 0, 12));
    field(h, 136, 12, octal(0, 12));
    field(h, 156, 1, { file: '0', hardlink: '1', symlink: '2', fifo: '6', dir: '5' }[e.type]);
    field(h, 157, 100, e.linkpath ?? '');
    field(h, 257, 6, 'ustar\0');
    field(h, 263, 2, '00');
    h.fill(' ', 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(h);
    if (e.type === 'file' && body.length) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(blocks));
}

/** Publishes `data` as the bundle of `version` on a mirror folder, with its right SHA256SUMS line. */
export function publishBundle(outDir: string, version: string, data: Buffer): void {
  const dir = path.join(outDir, version);
  fs.mkdirSync(dir, { recursive: true });
  const name = `defenseclaw-upgrade-${version}-${process.platform}-${process.arch}.tar.gz`;
  fs.writeFileSync(path.join(dir, name), data);
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${createHash('sha256').update(data).digest('hex')}  ${name}\n`);
}
