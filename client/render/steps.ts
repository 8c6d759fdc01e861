/** How one host run looks on a terminal: its steps with times, a download bar, the plan. */
import cliProgress from 'cli-progress';
import type { StepRecord, UpgradePlan, UpgradeProgress } from '../../workflows/types.js';
import { bytes, color, duration, statusMark } from './format.js';

export interface DownloadState {
  name: string;
  offset: number;
  total: number;
}

export function stepLine(s: StepRecord, now: number): string {
  const end = s.endedAt ?? (s.status === 'running' ? now : undefined);
  const took = s.startedAt !== undefined && end !== undefined ? duration(end - s.startedAt) : '';
  const name = color.dim(s.name.padEnd(9));
  return `${statusMark(s.status)} ${name} ${s.detail ?? ''}${took ? color.dim(`  ${took}`) : ''}`;
}

export function downloadBar(d: DownloadState): string {
  const ratio = d.total > 0 ? Math.min(1, d.offset / d.total) : 1;
  const bar = cliProgress.Format.BarFormat(ratio, {
    barsize: 24,
    barCompleteString: '█'.repeat(24),
    barIncompleteString: '░'.repeat(24),
  } as cliProgress.Options);
  return `    ${bar} ${Math.round(ratio * 100)}% ${bytes(d.offset)} / ${bytes(d.total)}`;
}

export function renderProgress(p: UpgradeProgress, now: number, download?: DownloadState): string {
  const title = `${p.kind === 'rollback' ? 'Rollback' : 'Upgrade'} ${color.bold(p.host)}${p.from ? `: ${p.from} → ${p.to ?? '?'}` : ''}  ${color.dim(`[${p.phase}]`)}`;
  const lines = [title];
  for (const s of p.steps) {
    lines.push(stepLine(s, now));
    if (s.status === 'running' && s.name === 'download' && download && s.detail?.endsWith(download.name))
      lines.push(downloadBar(download));
  }
  return lines.join('\n');
}

export function renderPlan(plan: UpgradePlan): string {
  const sig = {
    verified: 'verified with cosign',
    unsigned: 'not signed by the release',
    'cosign-missing': 'signed, NOT verified (cosign is not installed)',
  }[plan.signature];
  return [
    color.bold(`Plan for ${plan.host}`),
    `  from ${plan.from} to ${color.bold(plan.to)} on ${plan.platform.os}/${plan.platform.arch}`,
    ...plan.artifacts.map((a) => `  ${a.name}  ${bytes(a.size)}\n    sha256 ${a.sha256}`),
    `  checksums.txt signature: ${sig}`,
    `  backup: $DEFENSECLAW_HOME/backups/${plan.backupId}`,
    `  downtime: ${plan.downtimeSteps.join(' → ')}`,
    `  on failure: ${plan.onFailure}`,
  ].join('\n');
}
