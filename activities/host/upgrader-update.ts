/**
 * A host's worker updating itself (issue 18): the new version is fetched from the source the
 * host's own configuration names, verified, installed side by side under versions/<v>, and
 * `current` is switched with switch.json written for the launcher, which then proves the new
 * version polls or goes back by itself. The process asks for its own restart (exit 75) after the
 * activity's result was delivered.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig, UpgraderSource } from '../../worker/host-config.js';
import { requestRestart, restartAvailable } from '../../worker/restart.js';
import { TOOL_VERSION } from '../../worker/tool-version.js';
import {
  DEFAULT_SWITCH_DEADLINE_SECONDS,
  UPGRADER_VERSION,
  linkedVersion,
  pointLink,
  readReverts,
  rootPaths,
  writeAtomic,
  type RevertRecord,
  type SwitchRecord,
} from '../../worker/upgrader-root.js';
import { run, which } from '../exec.js';
import { fetchBundle, fetchFromRegistry, type Fetched } from './upgrader-source.js';
import { UnsafeUpgraderArchive, checkUpgraderArchive, unpackUpgraderArchive } from './upgrader-unpack.js';
import { FailureType, activityContext, refuse, validated } from '../support.js';

export const NotUnderLauncher = 'NotUnderLauncher';
const ENTRIES = ['dist/client/main.js', 'node_modules/defenseclaw-upgrade/dist/client/main.js'];
const MARK = '.defenseclaw-upgrade-installed.json';

const UpgraderVersionSchema = z.string().regex(UPGRADER_VERSION.pattern, UPGRADER_VERSION.message);

const UpdateInput = z
  .object({
    version: UpgraderVersionSchema,
    /** How long the launcher gives the new version to poll (default 120 s). */
    deadlineSeconds: z.number().int().min(5).max(600).optional(),
  })
  .strict();
export type UpdateInput = z.input<typeof UpdateInput>;

export interface UpdateUpgraderResult {
  from: string;
  to: string;
  source: 'bundle' | 'registry';
  alreadyCurrent?: true;
}

/** The version a version folder runs (its package.json), with its entry point; undefined when unusable. */
export async function inspectVersionDir(dir: string): Promise<{ version: string; entry: string } | undefined> {
  for (const entry of ENTRIES) {
    try {
      if (!(await fs.stat(path.join(dir, entry))).isFile()) continue;
      const pkg = JSON.parse(await fs.readFile(path.join(dir, entry, '..', '..', '..', 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'defenseclaw-upgrade' && typeof pkg.version === 'string') return { version: pkg.version, entry };
    } catch {
      // next
    }
  }
  return undefined;
}

function sourceOf(config: HostConfig): UpgraderSource {
  if (!config.upgrader) throw refuse(NotUnderLauncher, 'this worker has no upgrader configuration');
  return config.upgrader;
}

async function installFrom(config: HostConfig, fetched: Fetched, tree: string): Promise<void> {
  if (fetched.source === 'bundle') return unpackUpgraderArchive(fetched.file, tree);
  // The registry's tarball: read with the same suspicion, then npm installs that verified file
  // (its dependencies from the same registry; no install scripts: the Temporal core bridge ships
  // its prebuilt binaries, and nothing else the worker needs builds at install time).
  await checkUpgraderArchive(fetched.file);
  await fs.mkdir(tree, { recursive: true });
  const env = { ...config.commandEnv };
  const npm = (await which('npm', env)) ?? path.join(path.dirname(process.execPath), 'npm');
  const r = await run(
    npm,
    [
      'install',
      '--prefix',
      tree,
      '--omit=dev',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--no-save',
      '--no-package-lock',
      '--registry',
      sourceOf(config).registry,
      fetched.file,
    ],
    { env, timeoutMs: 15 * 60_000, cwd: tree, signal: activityContext()?.cancellationSignal },
  );
  if (r.exitCode !== 0)
    throw new Error(
      `npm install of ${path.basename(fetched.file)} failed: ${r.output.split('\n').slice(-3).join(' ')}`,
    );
}

/** versions/<v> ready to run: reused when an earlier attempt installed and checked it, else fetched. */
async function ensureInstalled(config: HostConfig, version: string): Promise<'bundle' | 'registry'> {
  const src = sourceOf(config);
  const p = rootPaths(src.root);
  const target = path.join(p.versions, version);
  const mark = await fs.readFile(path.join(target, MARK), 'utf8').catch(() => undefined);
  const seen = await inspectVersionDir(target);
  if (mark && seen?.version === version) return (JSON.parse(mark) as { source: 'bundle' | 'registry' }).source;
  const st = await fs.lstat(target).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    // What `worker install` records for an npm -g install: usable as it is when it runs that version.
    if (seen?.version === version) return 'registry';
    throw refuse(FailureType.UnsafePath, `versions/${version} is a link to another version; refusing to replace it`);
  }
  await fs.mkdir(p.versions, { recursive: true });
  await fs.mkdir(p.staging, { recursive: true, mode: 0o700 });
  const staging = await fs.mkdtemp(path.join(p.staging, `${version}-`));
  try {
    const fetched = src.bundleUrl
      ? await fetchBundle(config, src, version, staging)
      : await fetchFromRegistry(config, src, version, staging);
    const tree = path.join(staging, 'tree');
    await fs.mkdir(tree);
    try {
      await installFrom(config, fetched, tree);
    } catch (err) {
      if (err instanceof UnsafeUpgraderArchive) throw refuse(FailureType.UnsafeArchive, err.message);
      throw err;
    }
    const got = await inspectVersionDir(tree);
    if (got?.version !== version) {
      throw refuse(
        FailureType.VersionMismatch,
        got
          ? `the ${fetched.source} for ${version} holds version ${got.version}`
          : `the ${fetched.source} for ${version} has no entry point`,
      );
    }
    await fs.writeFile(
      path.join(tree, MARK),
      `${JSON.stringify({ source: fetched.source, at: new Date().toISOString() })}\n`,
    );
    if (st) await fs.rm(target, { recursive: true, force: true });
    await fs.rename(tree, target);
    return fetched.source;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

export interface SwitchOptions {
  /** How long the launcher gives the new version to poll (default 120 s). */
  deadlineSeconds?: number;
  /** Write switch.json for a launcher to prove (false: no launcher supervises this root). */
  probation: boolean;
}

/**
 * Installs `version` side by side (reused when already installed and checked) and points
 * `current` at it, `previous` at the version it replaces; with probation, switch.json first.
 * Shared by updateUpgrader and `defenseclaw-upgrade self-update`.
 */
export async function installAndSwitch(
  config: HostConfig,
  version: string,
  opts: SwitchOptions,
): Promise<UpdateUpgraderResult> {
  const src = sourceOf(config);
  const p = rootPaths(src.root);
  const current = await linkedVersion(p.current);
  if (current === version) {
    return { from: current, to: version, source: src.bundleUrl ? 'bundle' : 'registry', alreadyCurrent: true };
  }
  const source = await ensureInstalled(config, version);
  const from = current ?? TOOL_VERSION;
  await fs.rm(path.join(p.readyDir, version), { force: true });
  if (opts.probation) {
    const record: SwitchRecord = {
      schema: 1,
      from,
      to: version,
      startedAt: new Date().toISOString(),
      deadlineSeconds: opts.deadlineSeconds ?? DEFAULT_SWITCH_DEADLINE_SECONDS,
    };
    // switch.json before `current`: a crash between the two leaves a switch.json the launcher drops.
    await writeAtomic(p.switchFile, `${JSON.stringify(record)}\n`);
  }
  if (current) await pointLink(src.root, 'previous', current);
  await pointLink(src.root, 'current', version);
  await prune(src.root, [version, ...(current ? [current] : [])]);
  return { from, to: version, source };
}

/**
 * Keeps versions/ to the new version and the one it replaced (what `current` and `previous`
 * name, and where the launcher goes back to), and drops staging left by an attempt that died an
 * hour ago or more. A version dir that is a link (an npm -g install) loses only the link.
 */
async function prune(root: string, keep: string[]): Promise<void> {
  const p = rootPaths(root);
  for (const name of await fs.readdir(p.versions).catch(() => [])) {
    if (!keep.includes(name)) await fs.rm(path.join(p.versions, name), { recursive: true, force: true });
  }
  for (const name of await fs.readdir(p.staging).catch(() => [])) {
    const st = await fs.lstat(path.join(p.staging, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 3_600_000)
      await fs.rm(path.join(p.staging, name), { recursive: true, force: true });
  }
}

/** Activity (host queue): install `version` side by side, switch to it, restart into it. */
export async function updateUpgrader(config: HostConfig, rawInput: unknown): Promise<UpdateUpgraderResult> {
  const input = validated(UpdateInput, rawInput, 'updateUpgrader');
  const src = sourceOf(config);
  if (!src.underLauncher || !restartAvailable()) {
    throw refuse(
      NotUnderLauncher,
      'this worker does not run under the launcher (DEFENSECLAW_UPGRADER_LAUNCHER); run it through `defenseclaw-upgrade worker install`',
    );
  }
  const r = await installAndSwitch(config, input.version, { deadlineSeconds: input.deadlineSeconds, probation: true });
  if (r.alreadyCurrent) {
    // A retried attempt after the switch, or nothing to do. A process still on the old code moves.
    if (TOOL_VERSION !== input.version) requestRestart();
    return { ...r, from: TOOL_VERSION };
  }
  activityContext()?.log.info(`switched ${r.from} → ${r.to} (${r.source}); restarting under the launcher`);
  requestRestart();
  return r;
}

const OutcomeInput = z.object({ version: UpgraderVersionSchema }).strict();
export type OutcomeInput = z.input<typeof OutcomeInput>;

/** Activity (host queue): where the switch to `version` stands: current, and the launcher's revert if it went back. */
export async function upgraderSwitchOutcome(
  config: HostConfig,
  rawInput: unknown,
): Promise<{ current: string; pending?: true; reverted?: RevertRecord }> {
  const { version } = validated(OutcomeInput, rawInput, 'upgraderSwitchOutcome');
  const p = rootPaths(sourceOf(config).root);
  const current = (await linkedVersion(p.current)) ?? 'none';
  const sw = await fs.readFile(p.switchFile, 'utf8').catch(() => undefined);
  let pending = false;
  try {
    pending = sw !== undefined && (JSON.parse(sw) as { to?: string }).to === version;
  } catch {
    // a garbled switch.json: the launcher drops it
  }
  const reverted =
    current === version ? undefined : (await readReverts(p.root)).filter((r) => r.from === version).pop();
  return { current, ...(pending ? { pending: true as const } : {}), ...(reverted ? { reverted } : {}) };
}
