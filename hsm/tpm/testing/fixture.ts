/** Test fixture: a fresh swtpm, a `Tpm` connected to it, and (by default) the EK/SRK provisioned. */
import { ensureIdentity } from '../identity.js';
import { Tpm } from '../tpm.js';
import { Swtpm } from './swtpm.js';

export interface TpmFixture {
  sim: Swtpm;
  tpm: Tpm;
}

export async function startTpm(opts: { identity?: boolean } = {}): Promise<TpmFixture> {
  const sim = await Swtpm.start();
  const tpm = await Tpm.open(sim.tcti);
  if (opts.identity ?? true) await ensureIdentity(tpm);
  return { sim, tpm };
}

/** Close the connection and stop the simulator (either may be undefined if start failed). */
export async function stopTpm(f: Partial<TpmFixture>): Promise<void> {
  await f.tpm?.close();
  await f.sim?.stop();
}
