/**
 * console: a module that writes with console.log / console.error (built with componentize-js's
 * `stdio` feature). Its stdout and stderr land in its own module log when it is granted
 * `wasi:cli/stdio`; without the grant the deploy is refused. It has no filesystem: the preopen list it
 * is linked to is empty.
 */
/// <reference path="../../types/module.d.ts" />

let calls = 0;

export const lifecycle = {
  start(config: string): void {
    console.log(`console started: ${JSON.parse(config).name}`);
  },
  stop(): void {
    console.log(`console stopping after ${calls} calls`);
  },
  invoke(method: string, payload: string): string {
    calls++;
    if (method === 'warn') console.error(`warning: ${payload}`);
    else console.log(`${method} ${payload}`);
    return JSON.stringify({ calls });
  },
};
