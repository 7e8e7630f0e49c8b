/**
 * Sandbox: one worker thread per module instance, and the broker that carries its host-capability
 * calls. The worker gets an empty env, no execArgv, no sockets (outbound HTTP only through the host's
 * `wasi:http/outgoing-handler`, to granted hosts) and no preopens except the module's own data
 * directory when `wasi:filesystem/data` is granted (nothing from preview2-shim is linked); its JS heap
 * is capped by `resourceLimits` and its linear memories by the loader's rewrite. A call that runs past
 * its deadline terminates the worker (V8 stops a spinning guest within milliseconds) while the daemon's
 * thread keeps serving.
 *
 *   pool.ts      workers spawned ahead of need
 *   instance.ts  one instance's lifecycle (load, gate, start, invoke, stop, end)
 *   broker.ts    the host half of the broker (the worker's half is worker.mjs; the protocol broker-protocol.mjs)
 *   call-channel.ts  the host half of the invoke channel: calls into the guest through shared memory
 *   messages.ts  what a worker may post, checked
 *   shared.ts    the .mjs modules both sides load
 */
export { Instance, type ExitReason, type InvokeOutcome, type SandboxOptions } from './instance.js';
export { checkReply, type StartTimings } from './messages.js';
export { keepSpare, spareWorkers, spareThreadIds, warmWorkerPool, drainWorkerPool, preloadWorkerModules, workersExited, setSpareIdleMs } from './pool.js';
