/**
 * thrower: a test guest (componentize-js, plain `module` world) whose exports throw, to check what the
 * build's export wrapper (guests/build.mjs exportWrapper) and the host make of it. Built on demand by the
 * tests (`node guests/build.mjs guests/adversarial/thrower`), not by `npm run build:guests`.
 *   start: throws `new Error(env.THROW_AT_START)` when that variable is set
 *   invoke kaboom  {"message"?} → throws `new Error(message ?? "kaboom")` from a nested function
 *   invoke type                  → a TypeError from the engine (reading a property of null)
 *   invoke refuse                → throws the string "refused" (an `err` answer on purpose)
 *   invoke echo    any           → the payload
 */
/// <reference path="../../../types/module.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';

interface StartConfig {
  env: Record<string, string>;
}

function start(config: string): void {
  const { env } = JSON.parse(config) as StartConfig;
  if (env.THROW_AT_START) throw new Error(env.THROW_AT_START);
  log('info', 'thrower started');
}

function explode(message: string): never {
  throw new Error(message);
}

function invoke(method: string, payload: string): string {
  switch (method) {
    case 'kaboom': {
      const body = JSON.parse(payload) as { message?: string } | null;
      return explode(body?.message ?? 'kaboom');
    }
    case 'type':
      return (JSON.parse('null') as { x: string }).x;
    case 'refuse':
      throw 'refused';
    case 'echo':
      return payload;
    default:
      throw `unknown method "${method}"`;
  }
}

export const lifecycle = { start, stop(): void {}, invoke };
