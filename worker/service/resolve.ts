/**
 * From `worker install|uninstall|status` flags to a Layout: platform, scope, account, paths.
 * Everything here only reads; a refusal is a ServiceError with the CLI's exit code.
 */
import path from 'node:path';
import { lookupAccount, ownerUid } from './accounts.js';
import {
  accountPaths,
  currentAccount,
  layoutFor,
  type Account,
  type Layout,
  type Platform,
  type Scope,
} from './layout.js';

/** A refusal: one line, exit 2 for usage and 1 otherwise. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

export interface ServiceFlags {
  platform?: string;
  scope?: string;
  /** --root DIR: every file under DIR, no systemctl/launchctl. */
  root?: string;
  upgraderRoot?: string;
  /** --user NAME (system scope): the account the worker runs as. */
  user?: string;
  /** --node PATH: the node binary the service runs (default: this one). */
  node?: string;
  dryRun?: boolean;
}

export interface Resolved {
  layout: Layout;
  /** The --root prefix, absolute, or undefined. */
  prefix?: string;
  /** True when the account was found (on the host, or in DIR/etc/passwd). */
  accountFound: boolean;
  isRoot: boolean;
}

export function hostPath(prefix: string | undefined, p: string): string {
  return prefix ? path.join(prefix, p) : p;
}

export function parsePlatform(v: string | undefined): Platform {
  const p = v ?? process.platform;
  if (p === 'linux' || p === 'darwin') return p;
  throw new ServiceError(
    v
      ? `--platform must be linux or darwin, got ${JSON.stringify(v)}`
      : `no service manager support on ${p}: only linux (systemd) and darwin (launchd)`,
    v ? 2 : 1,
  );
}

export function parseScope(v: string | undefined, isRoot: boolean): Scope {
  if (v === undefined) return isRoot ? 'system' : 'user';
  if (v === 'system' || v === 'user') return v;
  throw new ServiceError(`--scope must be system or user, got ${JSON.stringify(v)}`, 2);
}

async function systemAccount(
  name: string | undefined,
  platform: Platform,
  prefix: string | undefined,
  env: NodeJS.ProcessEnv,
) {
  let chosen = name;
  if (chosen === undefined) {
    // The owner of DEFENSECLAW_HOME when it names an existing directory, else `defenseclaw`.
    const uid = env.DEFENSECLAW_HOME ? ownerUid(hostPath(prefix, path.resolve(env.DEFENSECLAW_HOME))) : undefined;
    const owner = uid !== undefined ? await lookupAccount({ uid }, platform, prefix) : undefined;
    chosen = owner?.name ?? 'defenseclaw';
  }
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/i.test(chosen))
    throw new ServiceError(`--user ${JSON.stringify(chosen)} is not a valid account name`, 2);
  const entry = await lookupAccount({ name: chosen }, platform, prefix);
  const home = entry?.home || (platform === 'darwin' ? `/Users/${chosen}` : `/home/${chosen}`);
  const base = { name: chosen, group: entry?.group ?? chosen, uid: entry?.uid, gid: entry?.gid, home };
  return { account: accountPaths(base, env), found: entry !== undefined };
}

export async function resolveService(flags: ServiceFlags, env: NodeJS.ProcessEnv = process.env): Promise<Resolved> {
  const platform = parsePlatform(flags.platform);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const scope = parseScope(flags.scope, isRoot);
  if (flags.root !== undefined && !flags.root) throw new ServiceError('--root needs a directory', 2);
  const prefix = flags.root ? path.resolve(flags.root) : undefined;
  if (flags.user !== undefined && scope === 'user') {
    throw new ServiceError('--user names the account of a system-scope service; a user service runs as you', 2);
  }
  let account: Account;
  let accountFound = true;
  if (scope === 'system') {
    const r = await systemAccount(flags.user, platform, prefix, env);
    account = r.account;
    accountFound = r.found;
  } else {
    account = currentAccount(env);
  }
  try {
    const layout = layoutFor({
      platform,
      scope,
      env,
      account,
      upgraderRoot: flags.upgraderRoot,
      nodePath: flags.node ? path.resolve(flags.node) : process.execPath,
    });
    return { layout, prefix, accountFound, isRoot };
  } catch (err) {
    throw new ServiceError((err as Error).message, 2);
  }
}
