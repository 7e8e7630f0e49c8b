/**
 * One TPM connection per TCTI string inside the daemon, shared by its users (the key store, measured
 * launch): a simulator (swtpm, mssim) serves one connection at a time, so a second `Tpm.open` would wait
 * forever; commands on the shared `Tpm` are serialised by its channel. `close()` on the shared object
 * closes the connection when its last user closes it.
 */
import { Tpm } from './tpm.js';

const shared = new Map<string, { tpm: Promise<Tpm>; refs: number }>();

export async function openSharedTpm(tcti: string): Promise<Tpm> {
  let entry = shared.get(tcti);
  if (!entry) {
    const e = { refs: 0, tpm: Tpm.open(tcti) };
    entry = e;
    shared.set(tcti, e);
    e.tpm.then(
      (tpm) => {
        const close = tpm.close.bind(tpm);
        tpm.close = async () => {
          if (--e.refs > 0) return;
          if (shared.get(tcti) === e) shared.delete(tcti);
          await close();
        };
      },
      () => {
        if (shared.get(tcti) === e) shared.delete(tcti);
      },
    );
  }
  const tpm = await entry.tpm;
  entry.refs++;
  return tpm;
}
