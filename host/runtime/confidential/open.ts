/**
 * The runtime side of a confidential module (`kind: "confidential"`): its image is a package (format.ts),
 * opened at deploy and again at every start, in memory:
 *
 *   1. parsed, and the publisher's signature verified under the device's module trust (as a module's);
 *   2. the recipient entry for this device's key found (`not-a-recipient` otherwise);
 *   3. the content key unwrapped by the daemon's TeeBackend, which releases it only if its policy holds
 *      now (on a TPM: PolicyPCR over the runtime PCR, enforced by the TPM; `policy-mismatch` names the PCR);
 *   4. the component decrypted and its digest and size checked against the header.
 *
 * The plaintext is returned as a buffer and never written: the caller transpiles it without the disk
 * cache (loader.ts `prepare(…, { disk: false })`). Refusals are `ConfidentialRefusal`s, RuntimeErrors whose
 * code makes the supervisor's decision: `denied` (not a recipient, policy mismatch) and `invalid` (a bad
 * package) are terminal — the module is not restarted in a loop; `failed` (the TEE unreachable) is retried
 * with back-off.
 */
import { createHash } from 'node:crypto';
import { TeeError, type TeeBackend } from '../../../hsm/tee/port.js';
import { RuntimeError, type RuntimeErrorCode } from '../errors.js';
import type { ModuleTrust, SignerIdentity } from '../trust.js';
import { MAGIC, PackageError, parsePackage } from './format.js';
import { openPackage, verifyPackage } from './package.js';

/** The kind whose image is a confidential package. */
export const CONFIDENTIAL_KIND = 'confidential';

/** Whether `bytes` start like a confidential package (the magic only; parsePackage checks the rest). */
export function isConfidentialPackage(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length).equals(MAGIC);
}

/** A confidential module refused: `reason` is the package or TEE refusal; `pcr` the PCR that differs. */
export class ConfidentialRefusal extends RuntimeError {
  constructor(code: RuntimeErrorCode, readonly reason: string, message: string, readonly pcr?: number) {
    super(code, message);
  }
}

export interface OpenedComponent {
  /** The decrypted component: in memory only. */
  component: Buffer;
  who: SignerIdentity;
  /** `sha256:<hex>` of the component (checked against the header). */
  plaintextDigest: string;
}

/** Resolves the daemon's TEE backend (host/confidential/backend.ts), or undefined when none is configured. */
export type TeeResolver = () => Promise<TeeBackend | undefined>;

const sha256 = (b: Uint8Array): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** Open a package for module `name` (see the module comment). Signature refusals are thrown as they are. */
export async function openConfidential(name: string, bytes: Uint8Array, trust: ModuleTrust, tee: TeeResolver | undefined): Promise<OpenedComponent> {
  const pkg = refusing(name, () => parsePackage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
  const who = await verifyPackage(pkg, trust, name);
  const backend = await refusingAsync(name, async () => tee?.());
  if (!backend) {
    throw new ConfidentialRefusal('invalid', 'not-configured', `module "${name}" is confidential but this device has no TEE backend: configure [tpm] (or [confidential] backend = "optee")`);
  }
  const component = await refusingAsync(name, async () => {
    const { keyId } = await backend.deviceKey();
    return openPackage(pkg, keyId, (wrapped, policy) => backend.unwrap(wrapped, policy));
  });
  return { component, who, plaintextDigest: sha256(component) };
}

function refusing<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw refusal(name, err);
  }
}

async function refusingAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw refusal(name, err);
  }
}

/** A package or TEE error as a typed runtime refusal; anything else unchanged. */
export function refusal(name: string, err: unknown): unknown {
  const what = `module "${name}": confidential package refused`;
  if (err instanceof PackageError) {
    const code = err.reason === 'not-a-recipient' ? 'denied' : 'invalid';
    return new ConfidentialRefusal(code, err.reason, `${what} (${err.reason}): ${err.message}`);
  }
  if (err instanceof TeeError) {
    if (err.reason === 'policy-mismatch') {
      const pcr = err.pcr === undefined ? '' : ` PCR ${err.pcr}`;
      return new ConfidentialRefusal('denied', 'policy-mismatch', `${what} (policy-mismatch${pcr}): ${err.message}; not restarted: it runs again only on the runtime the key is bound to (start it once the PCR holds that value again); a changed runtime needs a new device key and a package sealed to it`, err.pcr);
    }
    const code = err.reason === 'unavailable' ? 'failed' : 'invalid';
    return new ConfidentialRefusal(code, err.reason, `${what} (${err.reason}): ${err.message}`);
  }
  return err;
}
