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
    verified: 'verified with cosign (identity, Sigstore chain, transparency log)',
    'checked-locally':
      'identity and signature checked locally; NOT verified with cosign (not installed): Sigstore chain and transparency log unchecked',
    unsigned: 'SKIPPED: the release is not signed',
    'cosign-missing': 'signed, NOT verified (cosign is not installed)',
  }[plan.signature];
  const route = plan.route ?? [];
  const how = (v: string) =>
    v === 'checksums' ? 'checksums.txt' : v === 'digest' ? "GitHub's asset digest" : 'NOT VERIFIED';
  return [
    color.bold(`Plan for ${plan.host}`),
    `  from ${plan.from} to ${color.bold(plan.to)} on ${plan.platform.os}/${plan.platform.arch}`,
    ...(route.length > 1
      ? [
          `  ${color.bold(`${route.length} hops`)}: ${route.map((h) => `${h.from} → ${h.to}${h.bridge ? ' (bridge)' : ''}`).join(', ')}`,
        ]
      : []),
    ...route.flatMap((h, i) => [
      `  ${route.length > 1 ? `hop ${i + 1}: ` : ''}release ${h.to}, ${h.era} era`,
      `    gateway ${h.gateway.name} (by ${how(h.gateway.verifiedBy)})`,
      `    wheel   ${h.wheel.name} (by ${how(h.wheel.verifiedBy)})`,
      `    signature files: ${h.signatureFiles.length ? h.signatureFiles.join(', ') : 'none'}${h.signatureRequired ? ' (mandatory)' : ''}`,
      ...(h.identities.length ? [`    signer must be: ${h.identities.join(' or ')}`] : []),
      `    migrations required: ${h.migrations.length ? h.migrations.join(', ') : 'those of the release between the versions'} (a missing one ${h.migrationFailurePolicy === 'warn' ? 'warns' : 'rolls back'})`,
    ]),
    ...plan.artifacts.map((a) => `  ${a.name}  ${bytes(a.size)}\n    sha256 ${a.sha256}`),
    `  checksums.txt signature: ${sig}`,
    ...(plan.health ? [`  healthy: ${plan.health}`] : []),
    `  backup: $DEFENSECLAW_HOME/backups/${plan.backupId}`,
    `  downtime: ${plan.downtimeSteps.join(' → ')}`,
    `  on failure: ${plan.onFailure}`,
  ].join('\n');
}
