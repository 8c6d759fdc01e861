/** What the worker's workflow bundle exports. */
export { upgradeHost } from './upgrade.js';
export { rollbackHost } from './rollback.js';
export { hostBackups } from './host-info.js';
export { fleetRollout } from './fleet.js';
export { checkChannel } from './channel.js';
