/** What the worker's workflow bundle exports. */
export { upgradeHost } from './upgrade.js';
export { rollbackHost } from './rollback.js';
export { hostBackups } from './host-info.js';
export { fleetRollout } from './fleet.js';
export { ringRollout } from './rings.js';
export { probeRing } from './ring-probe.js';
export { soakRing } from './ring-soak.js';
export { catchUpHosts } from './catch-up.js';
export { checkChannel } from './channel.js';
export { updateWorkerHost } from './worker-update.js';
export { proveWorkers } from './worker-proof.js';
export { fleetInventory, inventoryBatch } from './inventory.js';
export { standingInventory, refreshInventory } from './standing-inventory.js';
