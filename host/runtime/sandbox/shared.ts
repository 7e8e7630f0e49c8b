/**
 * The plain-ESM modules the daemon's side of the sandbox shares with the worker: the broker protocol
 * (broker-protocol.mjs: slots, answer codes, the one size function, the invoke channel's slots) and the boundary validator
 * (host/boundary/validate.mjs), and the glue's script form (glue-script.mjs). tsc emits no .mjs: the build copies
 * them into dist/ (scripts/copy-mjs.mjs), and both sides load them from the tree the code runs from (assets.ts).
 *
 * Their types are their own JSDoc, checked by `npm run typecheck` (checkJs). The build does not read
 * JS (no allowJs, so nothing of them is emitted): the interfaces below say what the daemon uses, and
 * shared.test.ts holds them to the modules.
 */
import type { Script } from 'node:vm';
import { assetUrl } from '../assets.js';
import type { InstanceType } from '../../boundary/types.js';

/** What the daemon uses of broker-protocol.mjs (see its header for the meaning of each). */
export interface BrokerProtocol {
  readonly ANSWER_LEN: number;
  readonly REQ_SEQ: number;
  readonly REQ_LEN: number;
  readonly REQ_FN: number;
  readonly ANSWER_SEQ: number;
  readonly FLAG_SLOTS: number;
  readonly ANSWER_NUMBER: number;
  readonly ANSWER_UNDEFINED: number;
  readonly ANSWER_TRUE: number;
  readonly ANSWER_FALSE: number;
  readonly MAX_NUMBER_ARGS: number;
  readonly PRIVATE_PREFIX: string;
  readonly CALL_SEQ: number;
  readonly CALL_METHOD_LEN: number;
  readonly CALL_PAYLOAD_LEN: number;
  readonly REPLY_SEQ: number;
  readonly REPLY_KIND: number;
  readonly REPLY_LEN: number;
  readonly REPLY_MICROS: number;
  readonly REPLY_POSTED: number;
  readonly CALL_SLOTS: number;
  readonly REPLY_OK: number;
  readonly REPLY_GUEST_ERROR: number;
  readonly REPLY_TRAP: number;
  readonly REPLY_EXIT: number;
  valueBytes(v: unknown): number;
}

/** What the daemon uses of validate.mjs: the argument checks of an interface's plain functions, by JS name. */
export interface BoundaryValidator {
  functionCheckers(iface: string, types: InstanceType): Map<string, (args: unknown[]) => void>;
}

/** What the daemon uses of glue-script.mjs: the glue as the script the worker compiles (for its code cache). */
export interface GlueScript {
  readonly GLUE_FILENAME: string;
  glueScript(source: string): string;
  compileGlue(source: string, cachedData?: Uint8Array): Script;
}

export const protocol = (await import(assetUrl('host/runtime/broker-protocol.mjs'))) as BrokerProtocol;
export const validator = (await import(assetUrl('host/boundary/validate.mjs'))) as BoundaryValidator;
export const glue = (await import(assetUrl('host/runtime/glue-script.mjs'))) as GlueScript;
