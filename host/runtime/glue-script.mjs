// A component's JS glue as a classic script. jco's glue (`instantiation: 'async'`) is an ES module whose
// only module syntax is its two exports (`instantiate`, `_util`) and one `import.meta.url` (the base URL of
// its `fetchCompile`, used only when no `getCoreModule` is given; the worker always gives one). Rewritten
// here into a strict function expression that returns `instantiate`, the sandbox worker compiles it with
// vm.Script: ~4 ms for a tiny component's 134 KB of glue where a `data:` URL import of the same text costs
// ~15 ms in Node's ESM loader, and under 1 ms with a code cache the daemon made of the same text
// (sandbox/glue-cache.ts). The daemon only compiles it, never runs it; one source, so both sides' texts
// (and so the code cache's source check) agree.
//
// Fails closed: glue with any other module syntax (a static import, another export, top-level await) does
// not compile as a script (SyntaxError), so the start fails and nothing of it runs. Compiled without
// `importModuleDynamically`, the glue's `import()` rejects: it can load nothing.

import { Script } from 'node:vm';

/** The file name the glue's frames carry in stack traces. */
export const GLUE_FILENAME = 'component.js';

/**
 * @param {string} source the verified glue (loader.ts `glueSource`) @returns {string} a script whose
 * completion value is the glue's `instantiate`
 */
export function glueScript(source) {
  const body = source.replace(/^export (function instantiate\(|const _util = )|\bimport\.meta\.url\b/gm, (_m, kept) => kept ?? 'undefined');
  if (!/^function instantiate\(/m.test(body)) throw new Error('the component glue exports no instantiate function');
  // On one line with the glue's first, so its line numbers stay those of the glue.
  return `(function () { 'use strict';${body}\nreturn instantiate;\n})()`;
}

/**
 * The glue compiled as a sandbox worker compiles it, with a code cache of the same text when one is given
 * (V8 checks that it belongs to this text and compiles afresh otherwise). The daemon (sandbox/glue-cache.ts),
 * the glue's rehearsal (glue-warm.worker.mjs) and the worker all compile it here, so their texts, and so
 * the code cache's source check, agree.
 * @param {string} source the verified glue @param {Uint8Array} [cachedData] @returns {Script}
 */
export function compileGlue(source, cachedData) {
  return new Script(glueScript(source), { filename: GLUE_FILENAME, ...(cachedData ? { cachedData } : {}) });
}
