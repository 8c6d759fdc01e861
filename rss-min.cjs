const mode = process.argv[2];
const m = () => { const u = process.memoryUsage(); return `rss ${(u.rss/1e6).toFixed(0)} heapTotal ${(u.heapTotal/1e6).toFixed(0)} heapUsed ${(u.heapUsed/1e6).toFixed(0)}`; };
(async () => {
let W, C;
if (mode === 'deep') { W = require('@temporalio/worker/lib/worker').Worker; C = require('@temporalio/worker/lib/connection').NativeConnection; }
else { ({ Worker: W, NativeConnection: C } = require('@temporalio/worker')); }
console.log('sdk loaded', m(), Object.keys(require.cache).length);
const connection = await C.connect({ address: 'localhost:7399' });
const w = await W.create({ connection, taskQueue: 'x', activities: { a: async () => 1 } });
w.run();
await new Promise(r => setTimeout(r, 8000));
console.log('worker idle', m());
if (global.gc) { global.gc(); await new Promise(r => setTimeout(r, 3000)); console.log('after gc', m()); }
process.exit(0);
})();
