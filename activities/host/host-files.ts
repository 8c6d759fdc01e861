/**
 * The files a real DefenseClaw host keeps that an upgrade must back up and restore byte for byte,
 * and where OpenClaw's home is (`claw.home_dir` in config.yaml, default ~/.openclaw).
 *
 * The list is the real upgrader's `_create_backup` (cmd_upgrade.py, identical 0.4.0 … 0.8.10), plus the
 * migration cursor (no real version backs it up, but a rollback must undo what the migrations recorded).
 * A file that does not exist is recorded as absent, and a rollback removes it again (the new gateway's first
 * start writes `.env` and may write `active_connector.json`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseYamlStrict } from '../yaml-file.js';
import type { HostConfig } from '../../worker/host-config.js';

export type Root = 'data' | 'openclaw';

export const BACKUP_ITEMS: ReadonlyArray<{ root: Root; path: string }> = [
  { root: 'data', path: 'config.yaml' },
  { root: 'data', path: '.env' },
  { root: 'data', path: 'guardrail_runtime.json' },
  { root: 'data', path: 'device.key' },
  { root: 'data', path: 'policies' },
  { root: 'data', path: '.migration_state.json' },
  // 0.4.0+: connectors (migration 0.4.0 seeds active_connector.json and tightens connector_backups/).
  { root: 'data', path: 'active_connector.json' },
  { root: 'data', path: 'codex_backup.json' },
  { root: 'data', path: 'claudecode_backup.json' },
  { root: 'data', path: 'zeptoclaw_backup.json' },
  { root: 'data', path: 'codex_config_backup.json' },
  { root: 'data', path: 'connector_backups' },
  { root: 'openclaw', path: 'openclaw.json' },
];

/** The folder a root stands for on this host. */
export interface Roots {
  data: string;
  openclaw: string;
}

/**
 * OpenClaw's home as the real CLI reads it: `claw.home_dir` of the given config.yaml, `~` expanded
 * against the host's HOME; the host's OPENCLAW_HOME (default ~/.openclaw) when unset or unusable.
 */
export async function openclawHomeFrom(config: HostConfig, configYaml: string): Promise<string> {
  let doc: unknown;
  try {
    doc = parseYamlStrict(await fs.readFile(configYaml, 'utf8'));
  } catch {
    return config.openclawHome;
  }
  const raw = (doc as { claw?: { home_dir?: unknown } } | null)?.claw?.home_dir;
  if (typeof raw !== 'string' || raw.trim() === '' || raw.length > 1024 || raw.includes('\0')) {
    return config.openclawHome;
  }
  const expanded = raw === '~' ? config.homeDir : raw.startsWith('~/') ? path.join(config.homeDir, raw.slice(2)) : raw;
  return path.isAbsolute(expanded) ? path.resolve(expanded) : config.openclawHome;
}

/** The roots of the live host (OpenClaw's home from the live config.yaml). */
export async function liveRoots(config: HostConfig): Promise<Roots> {
  return { data: config.dataDir, openclaw: await openclawHomeFrom(config, path.join(config.dataDir, 'config.yaml')) };
}
