/**
 * SCAFFOLDING (h-fleetself) until h-pkg's worker/identity.ts lands: only parseWorkerIdentity, as
 * CONTRACT-18 names it. Replaced by h-pkg's file on merge.
 */
export interface ParsedIdentity {
  version?: string;
  role?: string;
  host?: string;
  pid?: number;
}

export function parseWorkerIdentity(identity: string): ParsedIdentity {
  const m = /^defenseclaw-upgrade@([0-9]+\.[0-9]+\.[0-9]+):([a-z]+):([A-Za-z0-9._-]+):([0-9]+)$/.exec(identity);
  if (m) return { version: m[1], role: m[2], host: m[3], pid: Number(m[4]) };
  const old = /^defenseclaw-upgrade(?:-workflows)?:(?:([A-Za-z0-9._-]+):)?([0-9]+)$/.exec(identity);
  if (old) return { ...(old[1] ? { host: old[1] } : {}), pid: Number(old[2]) };
  return {};
}
