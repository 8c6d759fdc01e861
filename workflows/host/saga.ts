/**
 * The compensation stack: each step registers how to undo itself before it runs; a failure
 * unwinds the stack in reverse, every undo inside a non-cancellable scope, every one attempted
 * even when an earlier one failed (the caller then fails closed).
 */
import { CancellationScope } from '@temporalio/workflow';

export interface Compensation {
  name: string;
  undo: () => Promise<unknown>;
}

export class Saga {
  private readonly stack: Compensation[] = [];

  add(name: string, undo: () => Promise<unknown>): void {
    this.stack.push({ name, undo });
  }

  get size(): number {
    return this.stack.length;
  }

  /** Runs the undos in reverse; answers the ones that failed, with their errors. */
  async compensate(): Promise<Array<{ name: string; error: unknown }>> {
    const failed: Array<{ name: string; error: unknown }> = [];
    await CancellationScope.nonCancellable(async () => {
      while (this.stack.length) {
        const c = this.stack.pop()!;
        try {
          await c.undo();
        } catch (error) {
          failed.push({ name: c.name, error });
        }
      }
    });
    return failed;
  }
}
