/**
 * Installing: everything slow happens before the stop (a new Python environment built where it
 * will live, the new binary staged beside the old one); inside the downtime window only renames.
 *
 *   ~/.defenseclaw/.venv        -> venvs/<version>-<run>   (a link, switched atomically)
 *   ~/.local/bin/defenseclaw    -> ~/.defenseclaw/.venv/bin/defenseclaw
 *
 * The first upgrade finds `.venv` as a real folder: the switch moves it to
 * `venvs/original-<backup>` so that a rollback can move it back, byte for byte as it was.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { BackupIdSchema, VersionSchema } from '../../workflows/types.js';
import { STAGING_ID, stagedBinaryPath, stagingDir } from './artifacts.js';
import { FILE_STAMP, fileStamp } from './stage-gateway.js';
import { cliLinkPath, preservedVenvFor, venvPath } from './backup.js';
import { run, which } from '../exec.js';
import { atomicSymlink, ensureRealDir, fsyncDir, inside, lstatOrUndefined, readHead, sha256File } from '../fsutil.js';
import { assertNoGatewayCameBack, gatewayBinary } from './gateway.js';
import { readGatewayPid } from './gateway-process.js';
import { decodeProtected } from './protected-artifact.js';
import { isWheelName, payloadEra } from '../../workflows/eras/index.js';
import { isRefusalEnvelope } from '../release-eras.js';
import { assetNames } from '../releases.js';
import { FailureType, activityContext, cancellationSignal, refuse, validated } from '../support.js';

export const VENV_ID = z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+-[A-Za-z0-9]{6,12}$/, 'a venv name like 0.4.0-abc123');

export function venvsRoot(config: HostConfig): string {
  return path.join(config.dataDir, 'venvs');
}

/** The interpreter the current environment was built from (so the new one matches it). */
async function baseInterpreter(config: HostConfig): Promise<string> {
  const python = path.join(venvPath(config), 'bin', 'python');
  const r = await run(python, ['-c', 'import sys; print(sys._base_executable)'], {
    env: config.commandEnv,
    timeoutMs: 30_000,
  });
  const base = r.output.split('\n').pop()?.trim();
  if (r.exitCode === 0 && base && path.isAbsolute(base)) return base;
  return (await which('python3', config.commandEnv)) ?? 'python3';
}

async function installedVersion(config: HostConfig, python: string): Promise<string | undefined> {
  const r = await run(python, ['-c', "import importlib.metadata as m; print(m.version('defenseclaw'))"], {
    env: config.commandEnv,
    timeoutMs: 30_000,
  });
  return r.exitCode === 0 ? r.output.split('\n').pop()?.trim() : undefined;
}

const PrepareVenvInput = z
  .object({
    version: VersionSchema,
    stagingId: STAGING_ID,
    /** The downloaded wheel asset (default: the canonical wheel); a `.dcwheel` is decoded first. */
    asset: z.string().max(256).optional(),
    /** Its verified SHA-256, checked again while a protected payload is decoded. */
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  })
  .strict();
export type PrepareVenvInput = z.input<typeof PrepareVenvInput>;

/**
 * The wheel file to install: the asset itself, or a payload (`.dcwheel`) decoded to the `.whl` it
 * protects, as its era encodes and names it (workflows/eras/).
 */
async function wheelFile(dir: string, version: string, asset: string, sha256?: string): Promise<string> {
  if (!isWheelName(version, asset)) {
    throw refuse(FailureType.InvalidInput, `refusing wheel asset ${JSON.stringify(asset.slice(0, 120))}`);
  }
  let wheel = inside(dir, asset);
  const era = payloadEra(version, asset)!;
  if (era.encoding.kind === 'xor') {
    wheel = inside(dir, era.decodedWheelName(asset));
    await fs.rm(wheel, { force: true });
    await decodeProtected(inside(dir, asset), wheel, sha256, era.encoding);
  }
  const head = await readHead(wheel);
  if (isRefusalEnvelope(head) || head.length < 4 || head.readUInt32LE(0) !== 0x04034b50) {
    throw refuse(FailureType.UnsafeArchive, `${asset} is not a wheel (a refusal envelope or another file)`);
  }
  return wheel;
}

/** site-packages of an environment. */
async function purelib(config: HostConfig, python: string): Promise<string | undefined> {
  const r = await run(python, ['-I', '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], {
    env: config.commandEnv,
    timeoutMs: 30_000,
  });
  const p = r.output.split('\n').pop()?.trim();
  return r.exitCode === 0 && p && path.isAbsolute(p) ? p : undefined;
}

/** The distributions of the package itself, which the new wheel replaces. */
const OWN_DIST = /^defenseclaw(?:[-_.].*)?$/i;

/**
 * Seeds a new environment with everything the live one has installed (except DefenseClaw itself):
 * its site-packages, and its console scripts with their `#!` line pointed at the new interpreter.
 * Then the new wheel installs offline when the live environment already satisfies it, and a host
 * that cannot reach PyPI upgrades all the same.
 */
async function seedFromLive(config: HostConfig, newDir: string, newPython: string): Promise<boolean> {
  const liveDir = venvPath(config);
  const livePython = path.join(liveDir, 'bin', 'python');
  const [from, to] = [await purelib(config, livePython), await purelib(config, newPython)];
  if (!from || !to || path.basename(path.dirname(from)) !== path.basename(path.dirname(to))) return false;
  for (const name of await fs.readdir(from)) {
    if (OWN_DIST.test(name)) continue;
    await fs.cp(path.join(from, name), path.join(to, name), { recursive: true, verbatimSymlinks: true, force: false });
  }
  const liveBin = path.join(await fs.realpath(liveDir), 'bin');
  const newBin = path.join(newDir, 'bin');
  for (const name of await fs.readdir(liveBin)) {
    if (/^(python|pip|activate|deactivate|defenseclaw$)/.test(name)) continue;
    const src = path.join(liveBin, name);
    const st = await fs.lstat(src);
    if (!st.isFile() || (await lstatOrUndefined(path.join(newBin, name)))) continue;
    let data = await fs.readFile(src);
    const firstLine = data.subarray(0, Math.max(0, data.indexOf(10))).toString('utf8');
    if (firstLine.startsWith('#!') && firstLine.includes(`${liveBin}/python`)) {
      data = Buffer.concat([
        Buffer.from(firstLine.replace(`${liveBin}/python`, `${newBin}/python`)),
        data.subarray(firstLine.length),
      ]);
    }
    await fs.writeFile(path.join(newBin, name), data, { mode: st.mode & 0o7777 });
  }
  return true;
}

/**
 * Activity: builds the new Python environment beside the live one and installs the verified
 * wheel into it. It first reuses what the live environment has installed and installs offline
 * (no index contacted); only when that does not satisfy the new wheel does it fetch the missing
 * dependencies from the package index. Nothing live changes; a failure leaves the live one as it is.
 */
export async function prepareVenv(
  config: HostConfig,
  rawInput: unknown,
): Promise<{ venvId: string; tool: 'uv' | 'pip'; offline: boolean }> {
  const input = validated(PrepareVenvInput, rawInput, 'prepareVenv');
  const staging = await stagingDir(config, input.stagingId);
  const wheel = await wheelFile(staging, input.version, input.asset ?? assetNames(input.version).wheel, input.sha256);
  const venvId = `${input.version}-${input.stagingId.replace(/[^A-Za-z0-9]/g, '').slice(-8)}`;
  await ensureRealDir(config.dataDir, venvsRoot(config), 0o755);
  const dir = inside(venvsRoot(config), venvId);
  await fs.rm(dir, { recursive: true, force: true }); // a previous attempt's half-built env
  const base = await baseInterpreter(config);
  const uv = await which('uv', config.commandEnv);
  const python = path.join(dir, 'bin', 'python');
  const opts = { env: config.commandEnv, timeoutMs: 10 * 60_000, signal: cancellationSignal() };
  const must = async (file: string, args: string[]) => {
    const r = await run(file, args, opts);
    if (r.exitCode !== 0) {
      throw new Error(
        `${path.basename(file)} ${args[0]} failed (exit ${r.exitCode}): ${r.output.split('\n').slice(-3).join(' ').slice(0, 400)}`,
      );
    }
  };
  if (uv) await must(uv, ['venv', '--quiet', '--python', base, dir]);
  else await must(base, ['-m', 'venv', dir]);

  const seeded = await seedFromLive(config, dir, python).catch((err) => {
    activityContext()?.log.warn(`could not reuse the live environment's packages: ${(err as Error).message}`);
    return false;
  });
  const install = (offline: boolean) =>
    uv
      ? // Compiled now, before the stop: the migrations inside the window then import without compiling.
        run(
          uv,
          [
            'pip',
            'install',
            '--quiet',
            '--compile-bytecode',
            '--python',
            python,
            ...(offline ? ['--offline'] : []),
            wheel,
          ],
          opts,
        )
      : run(
          python,
          ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...(offline ? ['--no-index'] : []), wheel],
          opts,
        );
  let offline = seeded;
  let r = seeded ? await install(true) : undefined;
  if (!r || r.exitCode !== 0) {
    if (r) activityContext()?.log.info('the live environment does not satisfy the new wheel; fetching what it lacks');
    offline = false;
    r = await install(false);
  }
  if (r.exitCode !== 0) {
    throw new Error(
      `installing defenseclaw ${input.version} failed (exit ${r.exitCode}): ${r.output.split('\n').slice(-3).join(' ').slice(0, 400)}; the live environment was not touched`,
    );
  }
  const got = await installedVersion(config, python);
  if (got !== input.version) {
    throw refuse(
      FailureType.VersionMismatch,
      `the new environment has defenseclaw ${got ?? 'missing'}, expected ${input.version}`,
    );
  }
  return { venvId, tool: uv ? 'uv' : 'pip', offline };
}

const InstallGatewayInput = z
  .object({
    stagingId: STAGING_ID,
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The staged file's stamp when it was hashed (stageGateway); absent in runs recorded before it. */
    stamp: z.string().regex(FILE_STAMP).optional(),
  })
  .strict();
export type InstallGatewayInput = z.input<typeof InstallGatewayInput>;

/** Activity (downtime): the staged binary takes the live one's place with one atomic rename. */
export async function installGateway(config: HostConfig, rawInput: unknown): Promise<void> {
  const input = validated(InstallGatewayInput, rawInput, 'installGateway');
  // The stop was proven; nothing may have brought a gateway back since (the binary is about to change under it).
  assertNoGatewayCameBack(await readGatewayPid(config.dataDir));
  const target = gatewayBinary(config);
  const staged = stagedBinaryPath(config, input.stagingId);
  const st = await lstatOrUndefined(staged);
  if (!st) {
    // Already renamed by an attempt whose completion was lost: done if the target is ours.
    if ((await lstatOrUndefined(target)) && (await sha256File(target)) === input.sha256) return;
    throw refuse(FailureType.NotFound, 'the staged gateway binary is gone');
  }
  if (!st.isFile() || st.isSymbolicLink())
    throw refuse(FailureType.UnsafePath, 'the staged gateway binary is not a regular file');
  // Unchanged since stageGateway hashed it (same stamp): no need to read 60 MB again inside the window.
  const unchanged = input.stamp !== undefined && (await fileStamp(staged)) === input.stamp;
  if (!unchanged && (await sha256File(staged)) !== input.sha256)
    throw refuse(FailureType.ChecksumMismatch, 'the staged gateway binary changed since it was verified');
  await fs.rename(staged, target);
  await fsyncDir(config.binDir);
}

const SwitchVenvInput = z.object({ venvId: VENV_ID, backupId: BackupIdSchema }).strict();
export type SwitchVenvInput = z.input<typeof SwitchVenvInput>;

/** Activity (downtime): `.venv` becomes a link to the new environment; the CLI link is refreshed. */
export async function switchVenv(config: HostConfig, rawInput: unknown): Promise<void> {
  const input = validated(SwitchVenvInput, rawInput, 'switchVenv');
  const target = inside(venvsRoot(config), input.venvId);
  const tst = await lstatOrUndefined(target);
  if (!tst?.isDirectory() || tst.isSymbolicLink())
    throw refuse(FailureType.NotFound, `the prepared environment ${input.venvId} is gone`);
  const venv = venvPath(config);
  const st = await lstatOrUndefined(venv);
  if (st?.isDirectory() && !st.isSymbolicLink()) {
    const preserved = inside(config.dataDir, preservedVenvFor(input.backupId));
    if (await lstatOrUndefined(preserved)) throw refuse(FailureType.UnsafePath, `${preserved} already exists`);
    await fs.rename(venv, preserved);
  }
  await atomicSymlink(path.relative(config.dataDir, target), venv);
  await atomicSymlink(path.join(venv, 'bin', 'defenseclaw'), cliLinkPath(config));
}

/** Activity: removes a prepared environment that never went live (after a cancel or a failure before the switch). */
const DiscardVenvInput = z.object({ venvId: VENV_ID }).strict();
export type DiscardVenvInput = z.input<typeof DiscardVenvInput>;

export async function discardVenv(config: HostConfig, rawInput: unknown): Promise<void> {
  const { venvId } = validated(DiscardVenvInput, rawInput, 'discardVenv');
  const dir = inside(venvsRoot(config), venvId);
  const live = await fs.readlink(venvPath(config)).catch(() => '');
  if (path.resolve(config.dataDir, live) === dir) return;
  await fs.rm(dir, { recursive: true, force: true });
}
