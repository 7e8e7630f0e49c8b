/**
 * Monotonic counters in TPM NV memory (Part 1 §37.2.3, TPM_NT_COUNTER): the value only goes up, survives
 * power cycles, and starts at the highest value any counter on this TPM ever had (so a counter that is
 * deleted and redefined cannot be rolled back).
 */
import { ALG, NV } from './constants.js';
import { TpmError } from './rc.js';
import type { Tpm } from './tpm.js';

/** Owner-range NV indices start at 0x01000000 (TCG Handles registry); Edgeward uses 0x01500000.. by default. */
export const NV_COUNTER_BASE = 0x01500000;

const COUNTER_ATTRS = NV.NT_COUNTER | NV.AUTHWRITE | NV.AUTHREAD | NV.NO_DA;

export class NvCounter {
  constructor(
    private readonly tpm: Tpm,
    readonly index: number,
  ) {}

  /** Define the counter if it does not exist yet (empty auth, no dictionary-attack protection). */
  static async ensure(tpm: Tpm, index: number): Promise<NvCounter> {
    try {
      await tpm.nvDefineSpace({ nvIndex: index, nameAlg: ALG.SHA256, attributes: COUNTER_ATTRS, authPolicy: Buffer.alloc(0), dataSize: 8 });
    } catch (err) {
      if (!(err instanceof TpmError && err.code === 'TPM_RC_NV_DEFINED')) throw err;
    }
    return new NvCounter(tpm, index);
  }

  async increment(): Promise<bigint> {
    await this.tpm.nvIncrement(this.index);
    return this.read();
  }

  /** Current value; a counter never incremented throws TpmError TPM_RC_NV_UNINITIALIZED. */
  async read(): Promise<bigint> {
    const b = await this.tpm.nvRead(this.index, 8);
    return b.readBigUInt64BE(0);
  }
}
