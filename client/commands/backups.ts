/** `backups`: the host's backups with version, date and size, as its own worker sees them. */
import Table from 'cli-table3';
import type { BackupSummary } from '../../activities/host/backup.js';
import type { hostBackups } from '../../workflows/host/host-info.js';
import { connectTarget } from '../connect.js';
import { bytes, color } from '../render/format.js';
import type { CommonFlags } from './shared.js';

export async function backupsCommand(flags: CommonFlags): Promise<number> {
  const target = await connectTarget(flags);
  try {
    const list = (await target.client.workflow.execute<typeof hostBackups>('hostBackups', {
      taskQueue: target.workflowQueue,
      workflowId: `defenseclaw-backups-${target.host}-${Date.now()}`,
      args: [{ host: target.host, hostQueue: target.taskQueue }],
      workflowExecutionTimeout: '2m',
    })) as BackupSummary[];
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (!list.length) {
      process.stdout.write(`no backups on ${target.host}\n`);
      return 0;
    }
    const table = new Table({ head: ['backup', 'version', 'created', 'size', 'ok'], style: { head: [], border: [] } });
    for (const b of list) {
      table.push([
        b.id,
        b.fromVersion ? `${b.fromVersion}${b.toVersion ? ` → ${b.toVersion}` : ''}` : '',
        b.createdAt?.replace('T', ' ').slice(0, 19) ?? '',
        bytes(b.bytes),
        b.valid ? color.green('yes') : color.red(b.problem?.slice(0, 30) ?? 'no'),
      ]);
    }
    process.stdout.write(`${table.toString()}\n`);
    return 0;
  } finally {
    await target.close();
  }
}
