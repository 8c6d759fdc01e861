/**
 * `defenseclaw-upgrade worker status`: is the service installed, in which scope, what does the
 * service manager say, and what does the upgrader root say (current, previous, a pending switch,
 * the last revert). Read-only.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { linkTarget, readIfExists } from './files.js';
import { checkServiceManager } from './host-checks.js';
import type { Layout } from './layout.js';
import { managerState } from './manager.js';
import { hostPath, resolveService, type ServiceFlags } from './resolve.js';

export interface WorkerServiceStatus {
  installed: boolean;
  platform: string;
  scope: string;
  servicePath: string;
  envFile: { path: string; present: boolean; mode?: string };
  /** systemctl show / launchctl print, when the host's manager answers. */
  manager?: Record<string, string>;
  upgraderRoot: string;
  current?: string;
  previous?: string;
  pendingSwitch?: { from?: string; to?: string; startedAt?: string; deadlineSeconds?: number };
  lastRevert?: { at?: string; from?: string; to?: string; reason?: string };
}

/** The upgrader root an installed service names (its launcher's folder), else the default one. */
function rootFromService(text: string): string | undefined {
  const m = /(\/[A-Za-z0-9._/@+:,-]+)\/launcher\.mjs/.exec(text);
  return m?.[1];
}

async function readJson(p: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function managerAvailable(layout: Layout, env: NodeJS.ProcessEnv): boolean {
  try {
    checkServiceManager(layout, env);
    return true;
  } catch {
    return false;
  }
}

export async function serviceStatus(flags: ServiceFlags, env: NodeJS.ProcessEnv): Promise<WorkerServiceStatus> {
  const { layout: L, prefix } = await resolveService(flags, env);
  const service = await readIfExists(hostPath(prefix, L.servicePath));
  const root = (!flags.upgraderRoot && service && rootFromService(service.toString('utf8'))) || L.upgraderRoot;
  const at = (p: string) => hostPath(prefix, path.join(root, p));
  const envStat = await stat(hostPath(prefix, L.envFile)).catch(() => undefined);
  const sw = await readJson(at('switch.json'));
  const reverts = (await readIfExists(at('reverts.jsonl')))?.toString('utf8').trim().split('\n').filter(Boolean);
  let lastRevert: WorkerServiceStatus['lastRevert'];
  if (reverts?.length) {
    try {
      lastRevert = JSON.parse(reverts[reverts.length - 1]!) as WorkerServiceStatus['lastRevert'];
    } catch {
      lastRevert = { reason: 'unreadable last line of reverts.jsonl' };
    }
  }
  const version = async (name: string) => {
    const t = await linkTarget(at(name));
    return t === undefined ? undefined : path.basename(t);
  };
  const status: WorkerServiceStatus = {
    installed: service !== undefined,
    platform: L.platform,
    scope: L.scope,
    servicePath: L.servicePath,
    envFile: {
      path: L.envFile,
      present: envStat !== undefined,
      ...(envStat ? { mode: `0${(envStat.mode & 0o777).toString(8)}` } : {}),
    },
    upgraderRoot: root,
    current: await version('current'),
    previous: await version('previous'),
    ...(sw
      ? {
          pendingSwitch: {
            from: sw.from as string | undefined,
            to: sw.to as string | undefined,
            startedAt: sw.startedAt as string | undefined,
            deadlineSeconds: sw.deadlineSeconds as number | undefined,
          },
        }
      : {}),
    ...(lastRevert ? { lastRevert } : {}),
  };
  if (!prefix && service !== undefined && managerAvailable(L, env)) {
    status.manager = await managerState(L).catch(() => undefined);
  }
  return status;
}

export function renderStatus(s: WorkerServiceStatus): string {
  const lines = [
    `service:   ${s.installed ? 'installed' : 'not installed'} (${s.platform === 'linux' ? 'systemd' : 'launchd'}, ${s.scope} scope) ${s.servicePath}`,
  ];
  if (s.manager)
    lines.push(
      `manager:   ${Object.entries(s.manager)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  else if (s.installed) lines.push('manager:   unknown (the service manager is not running here, or --root)');
  lines.push(`env file:  ${s.envFile.path} ${s.envFile.present ? `(${s.envFile.mode})` : '(missing)'}`);
  lines.push(`upgrader:  ${s.upgraderRoot}`);
  lines.push(`current:   ${s.current ?? '(none)'}`);
  lines.push(`previous:  ${s.previous ?? '(none)'}`);
  if (s.pendingSwitch) {
    const p = s.pendingSwitch;
    lines.push(
      `switching: ${p.from ?? '?'} -> ${p.to ?? '?'} since ${p.startedAt ?? '?'} (proof within ${p.deadlineSeconds ?? 120} s)`,
    );
  }
  if (s.lastRevert) {
    const v = s.lastRevert;
    lines.push(`reverted:  ${v.from ?? '?'} -> ${v.to ?? '?'} at ${v.at ?? '?'}: ${v.reason ?? ''}`);
  }
  return `${lines.join('\n')}\n`;
}
