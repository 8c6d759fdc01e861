/**
 * A worker process in miniature for the crash guard: the Runtime's logger and the guard
 * installed as the agent and `worker` install them, one activity marked running, then an error
 * nobody catches (thrown from a timer, or a rejected promise nobody awaits) that carries a token.
 *
 *   node crash-child.js throw|reject
 */
import { trackRunning } from '../../worker/crash-guard.js';
import { guardWorkerProcess, installRuntime } from '../../worker/runtime.js';

installRuntime({ level: 'INFO' });
guardWorkerProcess();
trackRunning('x', {
  activityType: 'downloadArtifact',
  workflowId: 'defenseclaw-upgrade-h1',
  attempt: 2,
  since: new Date().toISOString(),
});
const err = new Error(`socket ended; token ${process.env.GITHUB_TOKEN}`);
if (process.argv[2] === 'reject') void Promise.reject(err);
else
  setTimeout(() => {
    throw err;
  }, 10);
setTimeout(() => process.exit(0), 5000);
