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
 *
 * What the flag costs (2026-12-01, evening): V8 refuses a code cache made under other flags, and Node's own
 * bootstrap code comes with one made under the defaults, so with any flag set every sandbox worker compiles
 * that code again as it boots. A cold process's first worker: 74–106 ms with this flag, 39–57 with none
 * (wasm-features.ts sets its own flag only while a compile runs, for that reason). Interleaved, the same
 * hour: hello's first start in a new daemon process (cache on disk, median of 5) 244 ms against 184 with
 * EDGEWARD_V8_DEFAULTS=1; daemon start to the management API (no module, median of 7) 546 against 460;
 * "modules started" with hello 763 against 710. What it saves: RSS (second start, settled) 117.5 against
 * 134.0 MiB with three QuickJS samples, 259–261 against 272–291 with hello, console and fetcher; with no
 * module it costs ~1 MiB. Memory is what devices run out of, so it stays; EDGEWARD_V8_DEFAULTS=1 is the
 * choice of a device that would rather start faster.
 *
 * Tried and not kept (a team call, figures in the README): most of the saving is the main thread's young
 * generation. `--max-semi-space-size=1` on node's command line (a bin whose first lines are a sh/JS
 * polyglot that execs node with it, and `npm start`), cleared again here at run time, keeps the main heap
 * as sized and puts the flag hash back to the default (`v8.cachedDataVersionTag()` equal to plain node's;
 * a cold worker boots in 52–55 ms). Same hour, interleaved: daemon start to the management API 437 against
 * 489 ms, "modules started" with hello 676 against 757; but RSS with three QuickJS samples 115.3–129.4 MiB
 * (four runs) against 111.5–120.7 with this flag: ~5 MiB more, likely workers deserialising Node's whole
 * bootstrap cache where a lazy compile touches less.
 */
import v8 from 'node:v8';

if (process.env.EDGEWARD_V8_DEFAULTS !== '1') v8.setFlagsFromString('--optimize-for-size');
