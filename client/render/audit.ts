/** The DefenseClaw audit lines of a run (`show`): one per upgrade receipt the run wrote. */
import type { UpgradeResult } from '../../workflows/types.js';

export function auditLines(receipts: UpgradeResult['defenseclawReceipts']): string[] {
  return (receipts ?? []).map((r) => {
    const ack =
      r.acknowledged === true
        ? '; acknowledged: the gateway recorded it in its audit store and deleted the receipt'
        : r.acknowledged === false
          ? '; not yet acknowledged by the gateway'
          : '';
    return `DefenseClaw audit: recorded as ${r.receiptId} (${r.from} → ${r.to}, ${r.status}${r.failureCode ? `/${r.failureCode}` : ''}${ack})`;
  });
}
