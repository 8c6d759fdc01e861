/** What the worker's workflow bundle exports. */
export { upgradeHost } from './host/upgrade.js';
export { rollbackHost } from './host/rollback.js';
export { hostBackups } from './host/host-info.js';
export { fleetRollout } from './fleet/fleet.js';
export { ringRollout } from './fleet/rings.js';
export { probeRing } from './fleet/ring-probe.js';
export { soakRing } from './fleet/ring-soak.js';
export { catchUpHosts } from './fleet/catch-up.js';
export { checkChannel } from './fleet/channel.js';
export { updateWorkerHost } from './fleet/worker-update.js';
export { proveWorkers } from './fleet/worker-proof.js';
export { fleetInventory, inventoryBatch } from './fleet/inventory.js';
export { standingInventory, refreshInventory } from './fleet/standing-inventory.js';
