/** Small formatting helpers: colours that respect NO_COLOR and pipes, durations, sizes. */
import pc from 'picocolors';

const useColor = process.stdout.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
export const color = pc.createColors(useColor);

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} m ${Math.round((ms % 60_000) / 1000)} s`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function statusMark(status: string): string {
  switch (status) {
    case 'done':
      return color.green('✔');
    case 'failed':
      return color.red('✖');
    case 'skipped':
      return color.yellow('–');
    case 'running':
      return color.cyan('…');
    default:
      return ' ';
  }
}
