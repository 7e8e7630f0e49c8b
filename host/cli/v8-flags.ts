/**
 * V8 flags for the `edgeward` process, set before any other module is evaluated (main.ts imports this
 * first). Chosen by figures (issue 14, daemon with no module, RSS settled, median of 3, pool off): default
 * 93.3 MiB; --max-semi-space-size=1 82.5 (command line only: it does nothing once the heap exists);
 * --optimize-for-size 80.7 on the command line, 79.4 set here at run time; both 78.4; --single-threaded-gc
 * 92.0, --max-lazy 93.4: no gain. `--optimize-for-size` keeps the young generation small and flushes cold
 * bytecode sooner; it does not touch WebAssembly tiering (Liftoff/TurboFan), and it takes effect from here,
 * so the bin (dist/host/bundle/edgeward.js), `npm start` and the unbundled `node dist/host/cli/main.js` all
 * get it with no shebang flags. Flags are process-wide: sandbox workers started later inherit it (their
 * heaps are sized by `resourceLimits` anyway). Cost measured: a daemon with `hello` (cache warm) reaches
 * "modules started" in ~1.59 s instead of ~1.39 s on this loaded 2-core machine. EDGEWARD_V8_DEFAULTS=1
 * keeps V8's defaults (bench/memory.ts measures both). Measured again once @peculiar/x509 left the start
 * (daemon with no module, median of 3, same minute): 67.6 MiB as is; --max-semi-space-size=1 on the command
 * line 67.3, --single-threaded 67.6: no gain worth a flag. --lite-mode cannot be used: it turns WebAssembly
 * off (the guests, and undici's HTTP parser, which the management API's Request/Response load). In the
 * bundle the bin runs (scripts/bundle.mjs), ES imports are evaluated before the entry's own code, so there
 * the bundle's small shared chunks and commander are evaluated just before this runs.
 */
import v8 from 'node:v8';

if (process.env.EDGEWARD_V8_DEFAULTS !== '1') v8.setFlagsFromString('--optimize-for-size');
