// The real daemon (the compiled dist/, as `edgeward daemon` runs it) with a host capability that has a
// bug, and faults injected on signals, for test/reliability/survive.test.ts. Test-only: the CLI never
// registers extra capabilities.
//
//   edgeward:test/echo.echo  throws a TypeError on every call (a host bug reached from a guest)
//   SIGUSR2                  $EW_FAULTS_PER_SIGNAL (default 1) unhandled rejections
//   SIGHUP                   one uncaught exception, thrown from a timer
//   $EW_FAULT_AT_START=1     one unhandled rejection while the daemon is still starting
import 'reflect-metadata';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/host');
const { loadCliConfig } = await import(path.join(dist, 'cli/context.js'));
const { Daemon } = await import(path.join(dist, 'daemon/daemon.js'));

const { interfacesOfPackage } = await import(path.join(dist, 'boundary/reference.js'));
const faulty = {
  name: 'edgeward:test/echo',
  interfaces: ['edgeward:test/echo'],
  // Its WIT, as guests/adversarial/components.ts TEST_WIT.echo declares it (the runtime type-checks imports).
  types: await interfacesOfPackage('package edgeward:test;\ninterface echo { echo: func(x: u32) -> u32; }'),
  prepare: () => ({
    'edgeward:test/echo': {
      echo: () => {
        throw new TypeError('injected host bug at /var/lib/edgeward/secret-path SharedAccessKey=c2VjcmV0');
      },
    },
  }),
};

const daemon = new Daemon(await loadCliConfig({}), { capabilities: [faulty] });
process.on('SIGTERM', () => void daemon.stop('SIGTERM'));
const perSignal = Number(process.env.EW_FAULTS_PER_SIGNAL ?? 1);
process.on('SIGUSR2', () => {
  for (let i = 0; i < perSignal; i++) Promise.reject(new Error(`injected rejection ${i} token=abc123`));
});
process.on('SIGHUP', () => setTimeout(() => { throw new RangeError('injected uncaught exception'); }));
if (process.env.EW_FAULT_AT_START === '1') setImmediate(() => Promise.reject(new Error('injected rejection during start')));
await daemon.start();
process.stderr.write(`edgeward daemon running (pid ${process.pid})\n`);
process.exitCode = await daemon.wait();
