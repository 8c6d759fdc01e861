/**
 * Test-only workflow: one activity, a wait for the `release` signal (the window in which the test
 * kills the server), a second activity. Bundled by the tests, never by the product build.
 */
import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

export interface TinyActivities {
  echo(s: string): Promise<string>;
}

const { echo } = proxyActivities<TinyActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '100ms', maximumInterval: '1s' },
});

export const releaseSignal = defineSignal('release');
export const stageQuery = defineQuery<string>('stage');

export async function tinyWorkflow(name: string): Promise<string[]> {
  let stage = 'starting';
  let released = false;
  setHandler(releaseSignal, () => {
    released = true;
  });
  setHandler(stageQuery, () => stage);
  const out: string[] = [];
  out.push(await echo(`before:${name}`));
  stage = 'waiting';
  await condition(() => released);
  stage = 'after';
  out.push(await echo(`after:${name}`));
  stage = 'done';
  return out;
}
