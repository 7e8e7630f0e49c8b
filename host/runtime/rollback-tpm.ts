/**
 * Anti-rollback floors in TPM NV monotonic counters (TPM_NT_COUNTER, Part 1 §37.2.3): one counter per
 * (signer, module) pair whose value is the highest security version that ran (rollback.ts). A counter
 * only goes up, and the TPM keeps it: neither a daemon restart nor restoring an old copy of the state
 * directory lowers it (undefining and redefining the index does not either: a new counter starts at the
 * highest value any deleted counter had).
 *
 * Index: ROLLBACK_NV_BASE (0x01C20000: a 64 Ki block of NV index handles, 0x01000000–0x01FFFFFF, that
 * Edgeward sets aside for these counters; the TCG handle registry's ranges are a convention the TPM does
 * not enforce, and Edgeward's other counters sit at 0x015xxxxx) + the first two bytes of the pair's
 * key, probing up to ROLLBACK_NV_PROBES following indices on a collision. Which pair an index belongs to
 * is recorded in the TPM itself, not in a state file that a restore could change: the index's authValue
 * is derived from the pair key, so reading it with another pair's value fails (TPM_RC_AUTH_FAIL /
 * BAD_AUTH, no dictionary-attack lockout: TPMA_NV_NO_DA) and the next index is tried. The authValue is a
 * tag, not a secret: anyone with the TPM can raise (never lower) a counter, which blocks a module (a
 * denial of service the TPM owner can always cause), never rolls it back.
 */
import { createHash } from 'node:crypto';
import { ALG, NV } from '../../hsm/tpm/constants.js';
import { TpmError } from '../../hsm/tpm/rc.js';
import { passwordAuth } from '../../hsm/tpm/session.js';
import type { Tpm } from '../../hsm/tpm/tpm.js';
import { RuntimeError } from './errors.js';
import type { VersionFloors } from './rollback.js';

export const ROLLBACK_NV_BASE = 0x01c20000;
export const ROLLBACK_NV_PROBES = 8;
const ATTRS = NV.NT_COUNTER | NV.AUTHWRITE | NV.AUTHREAD | NV.NO_DA;

function authOf(key: Buffer): Buffer {
  return createHash('sha256').update('edgeward-rollback-nv-auth\0').update(key).digest().subarray(0, 16);
}

function indexOf(key: Buffer, probe: number): number {
  return ROLLBACK_NV_BASE + ((key.readUInt16BE(0) + probe) & 0xffff);
}

export class TpmVersionFloors implements VersionFloors {
  readonly kind = 'TPM NV counter';
  /** Index of each pair found or defined in this process (hex key → index). */
  private readonly indices = new Map<string, number>();

  constructor(private readonly tpm: Tpm) {}

  async floor(key: Buffer): Promise<number> {
    const index = await this.locate(key);
    return index === undefined ? 0 : this.read(index, key);
  }

  async advance(key: Buffer, version: number): Promise<number> {
    const index = (await this.locate(key)) ?? (await this.define(key));
    let value = await this.read(index, key);
    while (value < version) {
      await this.tpm.nvIncrement(index, passwordAuth(authOf(key)));
      value = await this.read(index, key);
    }
    if (value > version) {
      // A fresh counter starts at the highest value a deleted counter on this TPM reached.
      throw new RuntimeError('denied', `TPM NV counter 0x${index.toString(16)} is at ${value}, above security version ${version}: this TPM's counters started high; ship security versions ≥ ${value}`);
    }
    return value;
  }

  /** The pair's index, if the TPM holds one (undefined: none of its probe indices is defined). */
  private async locate(key: Buffer): Promise<number | undefined> {
    const known = this.indices.get(key.toString('hex'));
    if (known !== undefined) return known;
    for (let probe = 0; probe < ROLLBACK_NV_PROBES; probe++) {
      const index = indexOf(key, probe);
      const state = await this.probe(index, key);
      if (state === 'ours') {
        this.indices.set(key.toString('hex'), index);
        return index;
      }
      if (state === 'free') return undefined;
    }
    throw new RuntimeError('failed', `no free TPM NV index for this module among 0x${indexOf(key, 0).toString(16)}+${ROLLBACK_NV_PROBES}`);
  }

  /** Define the pair's counter at its first free probe index. */
  private async define(key: Buffer): Promise<number> {
    for (let probe = 0; probe < ROLLBACK_NV_PROBES; probe++) {
      const index = indexOf(key, probe);
      if ((await this.probe(index, key)) !== 'free') continue;
      await this.tpm.nvDefineSpace({ nvIndex: index, nameAlg: ALG.SHA256, attributes: ATTRS, authPolicy: Buffer.alloc(0), dataSize: 8 }, authOf(key));
      this.indices.set(key.toString('hex'), index);
      return index;
    }
    throw new RuntimeError('failed', `no free TPM NV index for this module among 0x${indexOf(key, 0).toString(16)}+${ROLLBACK_NV_PROBES}`);
  }

  private async probe(index: number, key: Buffer): Promise<'ours' | 'other' | 'free'> {
    try {
      await this.tpm.nvRead(index, 8, 0, passwordAuth(authOf(key)));
      return 'ours';
    } catch (err) {
      if (!(err instanceof TpmError)) throw err;
      if (err.code === 'TPM_RC_NV_UNINITIALIZED') return 'ours';
      if (err.isAuthFailure) return 'other';
      if (err.code === 'TPM_RC_HANDLE') return 'free'; // no such index
      throw err;
    }
  }

  private async read(index: number, key: Buffer): Promise<number> {
    try {
      const v = (await this.tpm.nvRead(index, 8, 0, passwordAuth(authOf(key)))).readBigUInt64BE(0);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    } catch (err) {
      if (err instanceof TpmError && err.code === 'TPM_RC_NV_UNINITIALIZED') return 0;
      throw err;
    }
  }
}
