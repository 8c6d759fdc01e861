/**
 * `defenseclaw-upgrade worker install`: the host's service (systemd unit or launchd plist), its
 * environment file (0600) and the upgrader root (launcher.mjs, versions/<v>, current), all checked
 * before anything is written; `--dry-run` prints the same plan and writes nothing.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { collectEnv, maskEnvText, maskPair, renderEnvFile, type EnvFlags } from './env-file.js';
import { ensureDir, lexists, readIfExists, symlinkAtomic, writeAtomic, type Owner } from './files.js';
import { checkServiceManager, checkWritable } from './host-checks.js';
import { renderLaunchdPlist } from './launchd-plist.js';
import { installCommands, runManager, showCommand } from './manager.js';
import { LAUNCHER_SOURCE, PACKAGE_DIR, PACKAGE_VERSION } from './package-info.js';
import { hostPath, resolveService, ServiceError, type ServiceFlags } from './resolve.js';
import { renderSystemdUnit } from './systemd-unit.js';
import { unifiedDiff } from './text-diff.js';

export interface InstallFlags extends ServiceFlags, EnvFlags {
  force?: boolean;
}

interface FileOp {
  label: string;
  /** As the host sees it. */
  path: string;
  content: string | Buffer;
  /** What may be shown (secrets masked); undefined: not shown (the launcher's code). */
  shown?: string;
  mode: number;
  owner?: Owner;
  dirMode: number;
  dirOwner?: Owner;
}

const octal = (m: number) => `0${m.toString(8)}`;

export async function installService(
  flags: InstallFlags,
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
): Promise<number> {
  const r = await resolveService(flags, env);
  const { layout: L, prefix } = r;
  const dry = Boolean(flags.dryRun);
  if (L.scope === 'system' && !r.isRoot && !prefix && !dry) {
    throw new ServiceError(
      'a system-scope service needs root: run it as root, or install for this user with --scope user',
    );
  }
  if (!prefix && !dry) {
    checkServiceManager(L, env);
    try {
      accessSync(L.nodePath, constants.X_OK);
    } catch {
      throw new ServiceError(`--node ${L.nodePath} is not an executable file on this host`, 2);
    }
  }
  if (L.scope === 'system' && !r.accountFound && !prefix && !dry) {
    throw new ServiceError(
      `the account ${L.account.name} does not exist on this host: create it (it should own ${L.account.dataDir}) or name another with --user`,
    );
  }
  if (!existsSync(LAUNCHER_SOURCE)) {
    throw new ServiceError(
      `this package has no launcher (${LAUNCHER_SOURCE} is missing): build or reinstall the package`,
    );
  }
  let vars: Map<string, string>;
  try {
    vars = collectEnv(env, flags);
  } catch (err) {
    throw new ServiceError((err as Error).message, 2);
  }

  const acct: Owner | undefined =
    L.scope === 'system' && L.account.uid !== undefined && L.account.gid !== undefined
      ? { uid: L.account.uid, gid: L.account.gid }
      : undefined;
  const chownNeeded = L.scope === 'system';
  const canChown = chownNeeded && acct !== undefined && r.isRoot;
  const asUser = canChown ? acct : undefined;
  const serviceText = L.platform === 'linux' ? renderSystemdUnit(L) : renderLaunchdPlist(L);
  const envText = renderEnvFile(vars);
  const launcherPath = path.join(L.upgraderRoot, 'launcher.mjs');
  const files: FileOp[] = [
    {
      label: L.platform === 'linux' ? 'systemd unit' : 'launchd plist',
      path: L.servicePath,
      content: serviceText,
      shown: serviceText,
      mode: 0o644,
      dirMode: 0o755,
    },
    {
      label: 'environment file',
      path: L.envFile,
      content: envText,
      shown: maskEnvText(envText),
      mode: 0o600,
      // systemd reads it as root; a launchd daemon's node reads it as the service account.
      owner: L.platform === 'darwin' ? asUser : undefined,
      dirMode: 0o700,
      dirOwner: L.platform === 'darwin' ? asUser : undefined,
    },
    {
      label: 'launcher',
      path: launcherPath,
      content: await readFile(LAUNCHER_SOURCE),
      mode: 0o644,
      dirMode: 0o755,
      dirOwner: asUser,
    },
  ];

  // What is there already.
  const diffs: string[] = [];
  let same = true;
  for (const f of files) {
    const old = await readIfExists(hostPath(prefix, f.path));
    if (old === undefined) {
      same = false;
      continue;
    }
    if (old.equals(Buffer.from(f.content))) continue;
    same = false;
    if (f.label === 'launcher') diffs.push(`${f.path}: differs from this package's launcher (${LAUNCHER_SOURCE})\n`);
    else if (f.label === 'environment file') {
      const [a, b] = maskPair(old.toString('utf8'), envText);
      diffs.push(await unifiedDiff(f.path, a, b));
    } else diffs.push(await unifiedDiff(f.path, old.toString('utf8'), serviceText));
  }
  const currentLink = path.join(L.upgraderRoot, 'current');
  const hasCurrent = await lexists(hostPath(prefix, currentLink));
  if (same && hasCurrent) {
    out(`already installed, nothing to do: ${L.servicePath}${prefix ? ` under ${prefix}` : ''}\n`);
    return 0;
  }
  const replacing = diffs.length > 0;
  if (replacing) {
    out(diffs.join(''));
    if (!flags.force) {
      throw new ServiceError(
        `a worker service is already installed with other settings (${L.servicePath}; differences above): --force replaces it`,
      );
    }
  }

  const versionDir = path.join(L.upgraderRoot, 'versions', PACKAGE_VERSION);
  const linkVersion = !hasCurrent && !(await lexists(hostPath(prefix, versionDir)));
  const toWrite = [
    ...files.map((f) => f.path),
    ...(hasCurrent ? [] : [currentLink]),
    ...(linkVersion ? [versionDir] : []),
  ];
  if (!dry) checkWritable(toWrite.map((p) => hostPath(prefix, p)));
  const commands = prefix ? [] : installCommands(L, replacing);

  // The plan, as printed for --dry-run and as done otherwise.
  const who =
    L.scope === 'system'
      ? `runs as ${L.account.name}:${L.account.group}${r.accountFound ? '' : ` (no such account ${prefix ? `in ${prefix}/etc/passwd` : 'on this host'} yet)`}`
      : `runs as ${L.account.name}`;
  out(
    `${dry ? 'dry run (nothing written, nothing run): ' : ''}${L.platform === 'linux' ? 'systemd' : 'launchd'} ${L.scope} service, ${who}, upgrader root ${L.upgraderRoot}${prefix ? `, files under ${prefix}` : ''}\n`,
  );
  for (const f of files) {
    const mode = `${octal(f.mode)}${f.owner ? ` ${L.account.name}` : ''}, dir ${octal(f.dirMode)}`;
    if (f.label === 'launcher') out(`copy  ${LAUNCHER_SOURCE} -> ${f.path} (${mode})\n`);
    else if (dry)
      out(
        `write ${f.path} (${mode}${f.label === 'environment file' ? ', secrets masked' : ''}):\n${f.shown}${f.shown?.endsWith('\n') ? '' : '\n'}\n`,
      );
    else out(`write ${f.path} (${mode})\n`);
  }
  if (linkVersion) out(`link  ${versionDir} -> ${PACKAGE_DIR} (this package)\n`);
  if (!hasCurrent) out(`link  ${currentLink} -> versions/${PACKAGE_VERSION}\n`);
  else out(`keep  ${currentLink} (already there)\n`);
  if (chownNeeded) {
    // A self-update writes in the upgrader root; a launchd daemon's node reads the env file and logs as the account.
    const owned = [
      L.upgraderRoot,
      path.dirname(versionDir),
      ...(L.platform === 'darwin' ? [path.dirname(L.envFile), L.envFile, path.dirname(L.logFile!)] : []),
    ].join(' ');
    out(
      canChown
        ? `chown ${L.account.name}:${L.account.group} ${owned}\n`
        : `note: chown ${L.account.name}:${L.account.group} ${owned} once the account exists (the worker writes or reads them as ${L.account.name})\n`,
    );
  }
  for (const c of commands) out(`run   ${showCommand(c)}\n`);
  if (!vars.has('TEMPORAL_ADDRESS') && !vars.has('TEMPORAL_PROFILE')) {
    out(
      'note: no TEMPORAL_ADDRESS (--address) nor TEMPORAL_PROFILE: the worker will look for Temporal at localhost:7233\n',
    );
  }
  for (const [name, dir] of [
    ['DEFENSECLAW_HOME', L.account.dataDir],
    ['DEFENSECLAW_BIN_DIR', L.account.binDir],
  ] as const) {
    if (L.platform === 'linux' && L.scope === 'system' && !existsSync(hostPath(prefix, dir))) {
      out(`note: ${name} ${dir} does not exist yet: the service cannot start until it does (ReadWritePaths)\n`);
    }
  }
  if (dry) return 0;

  for (const f of files) {
    await ensureDir(hostPath(prefix, path.dirname(f.path)), f.dirMode, f.dirOwner);
    await writeAtomic(hostPath(prefix, f.path), f.content, f.mode, f.owner);
  }
  await ensureDir(hostPath(prefix, path.dirname(versionDir)), 0o755, asUser);
  await ensureDir(hostPath(prefix, L.upgraderRoot), 0o755, asUser);
  if (linkVersion) await symlinkAtomic(PACKAGE_DIR, hostPath(prefix, versionDir));
  if (!hasCurrent) await symlinkAtomic(path.join('versions', PACKAGE_VERSION), hostPath(prefix, currentLink));
  if (L.logFile) await ensureDir(hostPath(prefix, path.dirname(L.logFile)), 0o755, asUser);
  for (const c of commands) await runManager(c, c[1] === 'bootout');
  out(
    prefix
      ? `written under ${prefix}; nothing was enabled (--root)\n`
      : L.platform === 'linux'
        ? `installed and started: systemctl ${L.scope === 'user' ? '--user ' : ''}status defenseclaw-upgrade-worker, journalctl ${L.scope === 'user' ? '--user-unit' : '-u'} defenseclaw-upgrade-worker -f\n`
        : `installed and started: ${L.logFile}\n`,
  );
  return 0;
}
