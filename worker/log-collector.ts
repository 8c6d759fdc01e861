/**
 * The SDK's log collector without its clock. With core's logs forwarded (runtime.ts), the SDK
 * buffers every entry ~100 ms to order core's and the process's own, and flushes them from an
 * interval that wakes the process ten times a second forever: an idle host worker's whole CPU
 * above the bare SDK's (npm run bench -- idle). Here the same collector flushes on demand: one
 * timer while entries wait, none while there are none. Same entries, same order, same delay.
 *
 * The collector is internal to @temporalio/worker (lib/runtime-logger.js, pinned at 1.24.0); when
 * it does not look as expected, the SDK's own is used unchanged.
 */
import { createRequire } from 'node:module';
import type { Logger } from '@temporalio/common';

interface Collector {
  buffer: { size(): number };
  flushIntervalTimer: NodeJS.Timeout;
  minBufferTimeMs: number;
  appendOne(entry: unknown): void;
  receive(entries: unknown[]): void;
  flushMatured(): void;
  close(): void;
}
type CollectorClass = new (downstream: Logger) => Collector;

const require = createRequire(import.meta.url);
const METHODS = ['appendOne', 'receive', 'flushMatured', 'close'] as const;

function sdkCollectorModule(): { NativeLogCollector: CollectorClass } | undefined {
  try {
    const mod = require('@temporalio/worker/lib/runtime-logger.js') as { NativeLogCollector?: unknown };
    const Base = mod.NativeLogCollector;
    if (typeof Base !== 'function') return undefined;
    const proto = (Base as { prototype?: Record<string, unknown> }).prototype;
    if (!METHODS.every((m) => typeof proto?.[m] === 'function')) return undefined;
    return mod as { NativeLogCollector: CollectorClass };
  } catch {
    return undefined;
  }
}

function onDemand(Base: CollectorClass): CollectorClass {
  return class OnDemandLogCollector extends Base {
    private pending: NodeJS.Timeout | undefined;
    private readonly onDemand: boolean;

    constructor(downstream: Logger) {
      super(downstream);
      this.onDemand = typeof this.buffer?.size === 'function' && typeof this.minBufferTimeMs === 'number';
      if (this.onDemand) clearInterval(this.flushIntervalTimer);
    }

    override appendOne(entry: unknown): void {
      super.appendOne(entry);
      this.schedule();
    }

    override receive(entries: unknown[]): void {
      super.receive(entries);
      this.schedule();
    }

    override close(): void {
      super.close();
      clearTimeout(this.pending);
      this.pending = undefined;
    }

    /** One unref'd timer while entries wait to mature; none when the buffer is empty. */
    private schedule(): void {
      if (!this.onDemand || this.pending || this.buffer.size() === 0) return;
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.flushMatured();
        this.schedule();
      }, this.minBufferTimeMs).unref();
    }
  };
}

/**
 * Runs `install` (Runtime.install with core's logs forwarded) with the on-demand collector in
 * place of the SDK's; the SDK's module is left as it was afterwards.
 */
export function withOnDemandLogFlush<T>(install: () => T): T {
  const mod = sdkCollectorModule();
  if (!mod) return install();
  const Base = mod.NativeLogCollector;
  mod.NativeLogCollector = onDemand(Base);
  try {
    return install();
  } finally {
    mod.NativeLogCollector = Base;
  }
}
