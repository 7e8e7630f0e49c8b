import { describe, expect, it } from 'vitest';
import * as brokerProtocol from '../broker-protocol.mjs';
import * as validate from '../../boundary/validate.mjs';
import * as glueScript from '../glue-script.mjs';
import { glue, protocol, validator, type BoundaryValidator, type BrokerProtocol, type GlueScript } from './shared.js';

describe('the .mjs modules the daemon shares with the sandbox worker', () => {
  it('are what the daemon declares it uses (checked by npm run typecheck against their JSDoc)', () => {
    const p: BrokerProtocol = brokerProtocol;
    const v: BoundaryValidator = validate;
    for (const [k, value] of Object.entries(p)) if (typeof value !== 'function') expect(protocol[k as keyof BrokerProtocol]).toBe(value);
    expect(protocol.valueBytes('héllo')).toBe(p.valueBytes('héllo'));
    expect(typeof validator.functionCheckers).toBe(typeof v.functionCheckers);
    const g: GlueScript = glueScript;
    expect(glue.GLUE_FILENAME).toBe(g.GLUE_FILENAME);
    expect(glue.glueScript('export function instantiate() {}\n')).toBe(g.glueScript('export function instantiate() {}\n'));
    expect(typeof glue.compileGlue).toBe(typeof g.compileGlue);
  });
});
