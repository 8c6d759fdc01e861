/**
 * `defenseclaw-upgrade self-update --version X.Y.Z`: this machine's defenseclaw-upgrade moves to
 * another version without a workflow (the controller's `fleet worker` and the local agent; host
 * workers are moved by a fleet rollout with `--component worker`). The version comes from this
 * machine's own source (DEFENSECLAW_UPGRADER_BUNDLE_URL, else DEFENSECLAW_UPGRADER_REGISTRY), is
 * verified, installed side by side and switched to. A launcher running on this root is asked to
 * restart its child (SIGUSR2) and the command waits for the new version's proof (ready/<v>) or
 * the launcher's revert; without a launcher, the local agent is stopped so that the next command
 * starts the new version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { installAndSwitch } from '../../activities/host/upgrader-update.js';
import { agentStatus, stopAgent } from '../../worker/agent/agent.js';
import { loadHostConfig } from '../../worker/host-config.js';
import {
  DEFAULT_SWITCH_DEADLINE_SECONDS,
  isUpgraderVersion,
  launcherPid,
  readReverts,
  rootPaths,
} from '../../worker/upgrader-root.js';
import { CliFailure, UsageError } from '../errors.js';

export interface SelfUpdateFlags {
  version?: string;
  root?: string;
  deadline?: string;
  json?: boolean;
}

export interface SelfUpdateOutcome {
  outcome: 'switched' | 'alreadyCurrent' | 'reverted' | 'unproven';
  root: string;
  from: string;
  to: string;
  source: 'bundle' | 'registry';
  launcherPid?: number;
  agentStopped?: boolean;
  reason?: string;
}

function parseFlags(flags: SelfUpdateFlags): { version: string; deadlineSeconds: number } {
  if (!flags.version) throw new UsageError('self-update needs --version X.Y.Z');
  if (!isUpgraderVersion(flags.version))
    throw new UsageError(`invalid --version ${JSON.stringify(flags.version.slice(0, 40))}: expected X.Y.Z`);
  const d = flags.deadline === undefined ? DEFAULT_SWITCH_DEADLINE_SECONDS : Number(flags.deadline);
  if (!Number.isInteger(d) || d < 5 || d > 600)
    throw new UsageError('--deadline must be a whole number of seconds, 5 to 600');
  return { version: flags.version, deadlineSeconds: d };
}

/** Waits for ready/<to> with switch.json gone (proven), a revert of <to>, or the deadline. */
async function awaitProof(
  root: string,
  to: string,
  revertsBefore: number,
  ms: number,
): Promise<{ proven: boolean; reason?: string }> {
  const p = rootPaths(root);
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const reverted = (await readReverts(root)).slice(revertsBefore).find((r) => r.from === to);
    if (reverted) return { proven: false, reason: reverted.reason };
    if (fs.existsSync(path.join(p.readyDir, to)) && !fs.existsSync(p.switchFile)) return { proven: true };
    await new Promise((r) => setTimeout(r, 200));
  }
  return { proven: false, reason: `no proof from the launcher within ${Math.round(ms / 1000)} s` };
}

export async function selfUpdate(
  flags: SelfUpdateFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SelfUpdateOutcome> {
  const { version, deadlineSeconds } = parseFlags(flags);
  const config = loadHostConfig(flags.root ? { ...env, DEFENSECLAW_UPGRADER_ROOT: path.resolve(flags.root) } : env);
  const root = config.upgrader!.root;
  if (!fs.existsSync(path.join(root, 'versions'))) {
    throw new CliFailure(
      `no defenseclaw-upgrade installation at ${root} (no versions/); install one first (README: Install on a host)`,
    );
  }
  const launcher = launcherPid(root);
  const revertsBefore = (await readReverts(root)).length;
  const r = await installAndSwitch(config, version, { deadlineSeconds, probation: launcher !== undefined });
  const base = { root, from: r.from, to: r.to, source: r.source };
  if (r.alreadyCurrent) return { outcome: 'alreadyCurrent', ...base };
  if (launcher !== undefined) {
    process.kill(launcher, 'SIGUSR2');
    const proof = await awaitProof(root, version, revertsBefore, (deadlineSeconds + 30) * 1000);
    if (proof.proven) return { outcome: 'switched', ...base, launcherPid: launcher };
    const reverted = proof.reason !== undefined && !proof.reason.startsWith('no proof');
    return { outcome: reverted ? 'reverted' : 'unproven', ...base, launcherPid: launcher, reason: proof.reason };
  }
  const agent = await agentStatus(config.dataDir);
  const agentStopped = agent.alive ? (await stopAgent(config.dataDir, { graceMs: 20_000 })).stopped : false;
  return { outcome: 'switched', ...base, agentStopped };
}

export function describeSelfUpdate(o: SelfUpdateOutcome): string {
  const root = o.root;
  switch (o.outcome) {
    case 'alreadyCurrent':
      return `defenseclaw-upgrade ${o.to} is already current in ${root}`;
    case 'reverted':
      return `defenseclaw-upgrade ${o.to} was reverted to ${o.from} by the launcher: ${o.reason}`;
    case 'unproven':
      return `defenseclaw-upgrade switched ${o.from} → ${o.to} but ${o.reason}; see the launcher's log and ${path.join(root, 'reverts.jsonl')}`;
    default:
      return o.launcherPid !== undefined
        ? `defenseclaw-upgrade switched ${o.from} → ${o.to} (${o.source}): the launcher's process (pid ${o.launcherPid}) runs and polls ${o.to}`
        : `defenseclaw-upgrade switched ${o.from} → ${o.to} (${o.source}) in ${root}; ${o.agentStopped ? 'the local agent was stopped, the next command starts it on the new version' : 'no launcher runs here: the next start runs the new version'}`;
  }
}

/** The command: one line (or JSON), exit 0 when switched or already current, 1 when reverted or unproven. */
export async function selfUpdateCommand(flags: SelfUpdateFlags): Promise<number> {
  const o = await selfUpdate(flags);
  process.stdout.write(flags.json ? `${JSON.stringify(o)}\n` : `${describeSelfUpdate(o)}\n`);
  return o.outcome === 'switched' || o.outcome === 'alreadyCurrent' ? 0 : 1;
}
