/**
 * A host's answer to the fleet inventory (issue 22), read on the host by its own worker: the
 * installed gateway's version (`defenseclaw-gateway --version`), the installed wheel (its
 * dist-info in the live venv), /health (the gateway and every subsystem), the installed release's
 * era and the upgrader version this worker runs. Read-only, bounded, never an exception for a
 * part that cannot be read: that part is left out with a note.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HostConfig } from '../../worker/host-config.js';
import { TOOL_VERSION } from '../../worker/tool-version.js';
import type { HostReport } from '../../workflows/fleet/inventory-types.js';
import { venvPath } from './backup.js';
import { readInstalledVersion } from './gateway.js';
import { readGate } from './health-gate.js';
import { eraOfTag } from '../../workflows/eras/index.js';

const DIST_INFO = /^defenseclaw-(\d{1,9}\.\d{1,9}\.\d{1,9})\.dist-info$/;

/** The defenseclaw wheel installed in the live venv (lib/python3.X/site-packages/defenseclaw-X.Y.Z.dist-info). */
export async function readWheelVersion(config: HostConfig): Promise<string | undefined> {
  const lib = path.join(venvPath(config), 'lib');
  for (const py of await fs.readdir(lib).catch(() => [] as string[])) {
    if (!/^python3\.\d+$/.test(py)) continue;
    const names = await fs.readdir(path.join(lib, py, 'site-packages')).catch(() => [] as string[]);
    for (const name of names) {
      const m = DIST_INFO.exec(name);
      if (m) return m[1];
    }
  }
  return undefined;
}

function short(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).replace(/\s+/g, ' ').slice(0, 160);
}

/** Activity: this host as the inventory shows it. */
export async function readInventory(config: HostConfig): Promise<HostReport> {
  const notes: string[] = [];
  const [gateway, wheel, gate] = await Promise.all([
    readInstalledVersion(config).catch((err: unknown) => {
      notes.push(`gateway version: ${short(err)}`);
      return undefined;
    }),
    readWheelVersion(config).catch((err: unknown) => {
      notes.push(`wheel version: ${short(err)}`);
      return undefined;
    }),
    readGate(config, { counters: [], operatorCheck: false }).catch((err: unknown) => {
      notes.push(`health: ${short(err)}`);
      return undefined;
    }),
  ]);
  const report: HostReport = {
    health: gate
      ? { state: gate.subsystems.gateway ?? 'invalid', subsystems: gate.subsystems }
      : { state: 'unreachable', subsystems: {} },
    upgraderVersion: TOOL_VERSION,
  };
  if (gateway) {
    report.gatewayVersion = gateway.version;
    // The installed gateway does not say how it was published: the era is its tag's (workflows/eras/).
    report.era = eraOfTag(gateway.version).name;
  }
  if (wheel) report.wheelVersion = wheel;
  if (notes.length) report.notes = notes;
  return report;
}
