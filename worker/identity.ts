/**
 * What each of our workers tells Temporal it is (its identity, shown by describeTaskQueue's
 * pollers and in the UI): `defenseclaw-upgrade@<version>:<role>:<host>:<pid>`, so that `fleet
 * status` and a worker rollout can read which upgrader version polls each queue.
 */
import os from 'node:os';
import validSemver from 'semver/functions/valid.js';
import { TOOL_VERSION } from './tool-version.js';

/** `host`: a host's activity worker; `agent`: the local agent's workflow worker; `controller`: a fleet worker. */
export type WorkerRole = 'host' | 'agent' | 'controller';
export const WORKER_ROLES: readonly WorkerRole[] = ['host', 'agent', 'controller'];

const PREFIX = 'defenseclaw-upgrade';

export function workerIdentity(role: WorkerRole, host: string, pid = process.pid, version = TOOL_VERSION): string {
  return `${PREFIX}@${version}:${role}:${host}:${pid}`;
}

/** This machine's short host name (a controller's identity names the machine it runs on). */
export function shortHostname(): string {
  return os.hostname().split('.')[0] || 'localhost';
}

export interface ParsedWorkerIdentity {
  /** Undefined for the identities of releases before 0.2, which did not report their version. */
  version?: string;
  role?: WorkerRole;
  host?: string;
  pid?: number;
}

/** The identities of releases before 0.2: `defenseclaw-upgrade[-agent|-fleet|-workflows]:[<host>:]<pid>`. */
const OLD_ROLES: Record<string, WorkerRole> = {
  [PREFIX]: 'host',
  [`${PREFIX}-agent`]: 'agent',
  [`${PREFIX}-fleet`]: 'controller',
  [`${PREFIX}-workflows`]: 'controller',
};

function pidOf(s: string | undefined): number | undefined {
  return s !== undefined && /^[0-9]{1,10}$/.test(s) ? Number(s) : undefined;
}

/** Reads an identity written by workerIdentity (or by a release before 0.2); {} for anything else. */
export function parseWorkerIdentity(identity: string): ParsedWorkerIdentity {
  if (typeof identity !== 'string' || identity.length > 1000) return {};
  const parts = identity.split(':');
  const head = parts[0] ?? '';
  if (head.startsWith(`${PREFIX}@`)) {
    const version = head.slice(PREFIX.length + 1);
    if (validSemver(version) !== version || parts.length < 4) return {};
    const role = parts[1] as WorkerRole;
    if (!WORKER_ROLES.includes(role)) return { version };
    return { version, role, host: parts.slice(2, -1).join(':'), pid: pidOf(parts.at(-1)) };
  }
  const role = OLD_ROLES[head];
  if (!role || parts.length < 2) return {};
  return { role, ...(parts.length > 2 ? { host: parts.slice(1, -1).join(':') } : {}), pid: pidOf(parts.at(-1)) };
}
