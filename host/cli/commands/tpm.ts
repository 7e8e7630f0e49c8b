/**
 * `edgeward tpm registration-id`: the device's DPS registration id and endorsement key, read from the TPM
 * directly (no daemon needed), so a user can create the DPS individual enrollment — the same two values the
 * tpm2-tools script in Microsoft's "provision devices at scale with TPM" guide prints. Creates and persists
 * the EK (0x81010001) and SRK (0x81000001) if they are not there yet, as that script does.
 * `edgeward tpm status`: what is wrong with the TPM when provisioning fails (lockout, hierarchy auth).
 */
import type { Command } from 'commander';
import type { Config, TpmConfig } from '../../config/schema.js';
import { StartupError } from '../../errors.js';
import { Tpm } from '../../../hsm/tpm/tpm.js';
import { EK_HANDLE, HierarchyAuthError, SRK_HANDLE, ensureIdentity, tpmStatus } from '../../../hsm/tpm/identity.js';
import { DEFAULT_AUTH_KEY_HANDLE } from '../../../hsm/tpm/dps.js';
import { TpmTransportError } from '../../../hsm/tpm/transport.js';
import { TpmError } from '../../../hsm/tpm/rc.js';
import { action } from '../output.js';

export const DEFAULT_TCTI = 'device:/dev/tpmrm0';

/** TPM problems the user fixes on the device become StartupErrors (exit 2) with their hint. */
export function tpmCliError(err: unknown): unknown {
  if (err instanceof TpmTransportError) return new StartupError(err.message, err.reason === 'not-answering' || err.reason === 'protocol' ? 1 : 2);
  if (err instanceof HierarchyAuthError) return new StartupError(err.message, 2);
  if (err instanceof TpmError && err.code === 'TPM_RC_LOCKOUT') return new StartupError(err.message, 2);
  return err;
}

/**
 * Open the TPM that --tcti, $EDGEWARD_TPM_TCTI or [tpm] tcti names, run `fn`, close; TPM problems become CLI
 * errors. With an explicit TCTI the config is optional (it may still give [tpm.hierarchy_authorization]).
 */
async function withTpm<T>(getConfig: () => Promise<Config>, tcti: string | undefined, fn: (tpm: Tpm, cfg: TpmConfig | undefined) => Promise<T>): Promise<T> {
  const explicit = tcti ?? process.env.EDGEWARD_TPM_TCTI;
  const cfg = explicit !== undefined ? await getConfig().then((c) => c.tpm, () => undefined) : (await getConfig()).tpm;
  let dev: Tpm | undefined;
  try {
    dev = await Tpm.open(explicit ?? cfg?.tcti ?? DEFAULT_TCTI);
    return await fn(dev, cfg);
  } catch (err) {
    throw tpmCliError(err);
  } finally {
    await dev?.close();
  }
}

const hex = (h: number): string => `0x${h.toString(16).padStart(8, '0')}`;

export function registerTpmCommands(program: Command, getConfig: () => Promise<Config>): void {
  const tpm = program.command('tpm').description("the device's TPM 2.0");
  const tctiOption = ['--tcti <tcti>', 'TPM to use, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321 (default: [tpm] tcti)'] as const;

  tpm
    .command('registration-id')
    .description('print the DPS registration id and endorsement key (creates and persists EK/SRK if absent)')
    .option(...tctiOption)
    .option('--json', 'machine-readable output')
    .action(action((opts: { tcti?: string; json?: boolean }) => withTpm(getConfig, opts.tcti, (dev, cfg) => printRegistrationId(dev, cfg, opts.json === true))));

  tpm
    .command('status')
    .description('vendor, lockout and hierarchy-auth state, and the persistent keys Edgeward uses (changes nothing)')
    .option(...tctiOption)
    .option('--json', 'machine-readable output')
    .action(action((opts: { tcti?: string; json?: boolean }) => withTpm(getConfig, opts.tcti, (dev) => printTpmStatus(dev, opts.json === true))));
}

/** `tpm registration-id`: the DPS registration id and EK, creating and persisting EK/SRK if absent. */
async function printRegistrationId(dev: Tpm, cfg: TpmConfig | undefined, json: boolean): Promise<void> {
  const id = await ensureIdentity(dev, { hierarchyAuth: cfg?.hierarchy_authorization }).catch(async (err: unknown) => {
    // Say "lockout" rather than a bare auth failure when that is the reason.
    if (err instanceof TpmError && err.isAuthFailure && (await tpmStatus(dev).catch(() => undefined))?.inLockout) {
      throw new TpmError(err.command, 0x921);
    }
    throw err;
  });
  if (json) {
    process.stdout.write(
      JSON.stringify({ registrationId: id.registrationId, endorsementKey: id.endorsementKey, storageRootKey: id.storageRootKey, created: id.created }, null, 2) + '\n',
    );
    return;
  }
  process.stdout.write(`Registration Id:\n${id.registrationId}\n\nEndorsement Key:\n${id.endorsementKey}\n`);
  if (id.created.ek || id.created.srk) {
    process.stderr.write(`note: created and persisted ${[id.created.ek ? 'the EK at 0x81010001' : '', id.created.srk ? 'the SRK at 0x81000001' : ''].filter(Boolean).join(' and ')}\n`);
  }
}

/** `tpm status`: vendor, lockout, hierarchy auth and Edgeward's persistent handles; changes nothing. */
async function printTpmStatus(dev: Tpm, json: boolean): Promise<void> {
  const st = await tpmStatus(dev);
  if (json) {
    process.stdout.write(JSON.stringify({ ...st, persistent: st.persistent.map(hex) }, null, 2) + '\n');
    return;
  }
  const has = (h: number): string => (st.persistent.includes(h) ? 'present' : 'absent');
  const yes = (b: boolean): string => (b ? 'set' : 'not set');
  process.stdout.write(
    [
      `TPM:             ${st.manufacturer || 'unknown'} firmware ${st.firmwareVersion}`,
      `Lockout:         ${st.inLockout ? 'IN LOCKOUT' : 'no'} (${st.lockoutCounter} of ${st.maxAuthFail} failed authorizations)`,
      `Hierarchy auth:  owner ${yes(st.ownerAuthSet)}, endorsement ${yes(st.endorsementAuthSet)}, lockout ${yes(st.lockoutAuthSet)}`,
      `EK  ${hex(EK_HANDLE)}: ${has(EK_HANDLE)}`,
      `SRK ${hex(SRK_HANDLE)}: ${has(SRK_HANDLE)}`,
      `Auth key ${hex(DEFAULT_AUTH_KEY_HANDLE)}: ${has(DEFAULT_AUTH_KEY_HANDLE)}`,
    ].join('\n') + '\n',
  );
  if (st.ownerAuthSet || st.endorsementAuthSet) {
    process.stderr.write('note: a hierarchy auth value is set; Edgeward can read persisted EK/SRK but cannot create them\n');
  }
}
