/**
 * Where `worker install` puts things on this host: the service file (systemd unit or launchd plist),
 * the environment file, the upgrader root, the account the worker runs as, and its directories.
 */
import os from 'node:os';
import path from 'node:path';

export type Platform = 'linux' | 'darwin';
export type Scope = 'system' | 'user';

export const UNIT_NAME = 'defenseclaw-upgrade-worker.service';
export const LAUNCHD_LABEL = 'com.defenseclaw.upgrade-worker';
export const SYSTEM_ENV_FILE = '/etc/defenseclaw-upgrade/worker.env';
export const SYSTEM_UPGRADER_ROOT = '/opt/defenseclaw-upgrade';

/** The account the worker runs as, and the DefenseClaw paths it upgrades. */
export interface Account {
  name: string;
  group: string;
  /** Known when the account exists (on the host, or in DIR/etc/passwd with --root). */
  uid?: number;
  gid?: number;
  home: string;
  dataDir: string;
  binDir: string;
  /** Set only when OPENCLAW_HOME names it; the worker otherwise reads OpenClaw's own config. */
  openclawHome?: string;
  cacheDir: string;
}

export interface Layout {
  platform: Platform;
  scope: Scope;
  /** The unit or plist, as the host sees it (without --root's prefix). */
  servicePath: string;
  envFile: string;
  upgraderRoot: string;
  /** launchd only: where the worker's stdout/stderr go. */
  logFile?: string;
  /** The node binary ExecStart / ProgramArguments runs. */
  nodePath: string;
  account: Account;
}

/** Paths in a unit file or plist: absolute, and no character that would need quoting or escaping. */
export function checkServicePath(what: string, p: string): string {
  if (!path.isAbsolute(p)) throw new Error(`${what} must be an absolute path, got ${JSON.stringify(p)}`);
  if (!/^[A-Za-z0-9._/@+:,-]+$/.test(p) || p.split('/').includes('..')) {
    throw new Error(
      `${what} ${JSON.stringify(p)} has characters a service file cannot hold safely (use letters, digits, . _ - + @ : , /)`,
    );
  }
  return path.normalize(p).replace(/\/+$/, '') || '/';
}

function userConfigHome(env: NodeJS.ProcessEnv, home: string): string {
  return env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(home, '.config');
}

/** The contract's default: DEFENSECLAW_UPGRADER_ROOT, else /opt/… for the system, the XDG data dir for a user. */
export function defaultUpgraderRoot(scope: Scope, env: NodeJS.ProcessEnv, home: string): string {
  if (env.DEFENSECLAW_UPGRADER_ROOT) return path.resolve(env.DEFENSECLAW_UPGRADER_ROOT);
  if (scope === 'system') return SYSTEM_UPGRADER_ROOT;
  const data =
    env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(home, '.local', 'share');
  return path.join(data, 'defenseclaw-upgrade');
}

/** The DefenseClaw paths of an account: the environment's when it names them, else under its home. */
export function accountPaths(
  base: { name: string; group: string; uid?: number; gid?: number; home: string },
  env: NodeJS.ProcessEnv,
): Account {
  const abs = (v: string | undefined, fallback: string) => (v && path.isAbsolute(v) ? path.normalize(v) : fallback);
  return {
    ...base,
    dataDir: abs(env.DEFENSECLAW_HOME, path.join(base.home, '.defenseclaw')),
    binDir: abs(env.DEFENSECLAW_BIN_DIR, path.join(base.home, '.local', 'bin')),
    openclawHome:
      env.OPENCLAW_HOME && path.isAbsolute(env.OPENCLAW_HOME) ? path.normalize(env.OPENCLAW_HOME) : undefined,
    cacheDir: path.join(base.home, '.cache'),
  };
}

/** Every path of a layout for a scope and platform (the account already resolved). */
export function layoutFor(opts: {
  platform: Platform;
  scope: Scope;
  env: NodeJS.ProcessEnv;
  account: Account;
  upgraderRoot?: string;
  nodePath: string;
}): Layout {
  const { platform, scope, env, account } = opts;
  const home = account.home;
  const upgraderRoot = checkServicePath(
    'the upgrader root',
    opts.upgraderRoot ? path.resolve(opts.upgraderRoot) : defaultUpgraderRoot(scope, env, home),
  );
  const envFile =
    scope === 'system' ? SYSTEM_ENV_FILE : path.join(userConfigHome(env, home), 'defenseclaw-upgrade', 'worker.env');
  let servicePath: string;
  let logFile: string | undefined;
  if (platform === 'linux') {
    servicePath =
      scope === 'system'
        ? path.join('/etc/systemd/system', UNIT_NAME)
        : path.join(userConfigHome(env, home), 'systemd', 'user', UNIT_NAME);
  } else {
    servicePath =
      scope === 'system'
        ? path.join('/Library/LaunchDaemons', `${LAUNCHD_LABEL}.plist`)
        : path.join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
    logFile =
      scope === 'system'
        ? '/Library/Logs/defenseclaw-upgrade/worker.log'
        : path.join(home, 'Library', 'Logs', 'defenseclaw-upgrade', 'worker.log');
  }
  for (const [what, p] of [
    ['the node binary', opts.nodePath],
    ['DEFENSECLAW_HOME', account.dataDir],
    ['DEFENSECLAW_BIN_DIR', account.binDir],
    ['the home directory', home],
    ['the environment file', envFile],
    ['OPENCLAW_HOME', account.openclawHome],
  ] as const) {
    if (p !== undefined) checkServicePath(what, p);
  }
  return { platform, scope, servicePath, envFile, upgraderRoot, logFile, nodePath: opts.nodePath, account };
}

/** This process's own account (user scope). */
export function currentAccount(env: NodeJS.ProcessEnv): Account {
  const info = os.userInfo();
  const home = path.resolve(env.HOME || info.homedir);
  return accountPaths({ name: info.username, group: info.username, uid: info.uid, gid: info.gid, home }, env);
}
