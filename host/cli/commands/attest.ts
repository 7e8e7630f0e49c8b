/**
 * `edgeward attest quote --nonce HEX --out DIR`: a TPM quote of the measurement PCRs from the daemon, written
 * as the files `tpm2_checkquote -u ak.pub.pem -m quote.msg -s quote.sig -f quote.pcrs -g sha256 -q HEX
 * -e eventlog.bin` takes (plus ak.pub, the AK's TPM2B_PUBLIC). `edgeward attest verify DIR [--nonce HEX]`:
 * Edgeward's own verifier (host/measure/verify.ts), offline, no daemon needed. `edgeward attest activate`:
 * answer a verifier's credential challenge for the EK and the AK (host/measure/service.ts activateCredential).
 */
import type { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { MgmtClient } from '../client.js';
import { action } from '../output.js';
import { QUOTE_FILES } from '../../measure/quote-files.js';
import { describeMeasured, readBundle, verifyBundle } from '../../measure/verify.js';

const HEX = /^([0-9a-fA-F]{2}){1,64}$/;

export function registerAttestCommands(program: Command, getClient: () => Promise<MgmtClient>): void {
  const attest = program.command('attest').description('measured launch: TPM quotes of what the daemon ran, and their verification');
  attest
    .command('quote')
    .description('quote the measurement PCRs over a verifier nonce; write quote.msg, quote.sig, quote.pcrs, ak.pub.pem, ak.pub, eventlog.bin')
    .requiredOption('--nonce <hex>', 'the verifier\'s nonce (1 to 64 bytes, hex)')
    .requiredOption('--out <dir>', 'directory to write the files into (created if missing)')
    .action(
      action(async (opts: { nonce: string; out: string }) => {
        if (!HEX.test(opts.nonce)) {
          process.stderr.write('error: --nonce must be 1 to 64 bytes of hex\n');
          return 2;
        }
        const res = await (await getClient()).request<{ files: Record<string, string>; quoteMs: number }>('POST', '/attest/quote', { nonce: opts.nonce });
        await fs.mkdir(opts.out, { recursive: true });
        for (const [f, b64] of Object.entries(res.files)) {
          if ((QUOTE_FILES as readonly string[]).includes(f) || f === 'ek.pub' || f === 'ak.name') await fs.writeFile(path.join(opts.out, f), Buffer.from(b64, 'base64'));
        }
        process.stdout.write(`wrote ${Object.keys(res.files).join(', ')} to ${opts.out}\n`);
      }),
    );
  attest
    .command('activate')
    .description("prove the AK is in the TPM of this EK: answer a verifier's credential (tpm2_makecredential -u ek.pub -n $(cat ak.name))")
    .requiredOption('--credential <file>', 'tpm2_makecredential output')
    .requiredOption('--out <file>', 'where to write the recovered secret')
    .action(
      action(async (opts: { credential: string; out: string }) => {
        const credential = (await fs.readFile(opts.credential)).toString('base64');
        const res = await (await getClient()).request<{ secret: string }>('POST', '/attest/activate', { credential });
        await fs.writeFile(opts.out, Buffer.from(res.secret, 'base64'), { mode: 0o600 });
        process.stdout.write(`wrote the credential's secret to ${opts.out}\n`);
      }),
    );
  attest
    .command('verify')
    .description('verify a quote bundle: signature, nonce, the log replayed to the quoted PCRs, and every event\'s data against its digest; print what ran')
    .argument('<dir>', 'directory written by "edgeward attest quote"')
    .option('--nonce <hex>', 'the nonce the quote must be over (without it the nonce is not checked)')
    .action(
      action(async (dir: string, opts: { nonce?: string }) => {
        if (opts.nonce !== undefined && !HEX.test(opts.nonce)) {
          process.stderr.write('error: --nonce must be 1 to 64 bytes of hex\n');
          return 2;
        }
        const v = verifyBundle(await readBundle(dir), opts.nonce ? Buffer.from(opts.nonce, 'hex') : undefined);
        for (const e of v.events) process.stdout.write(describeMeasured(e) + '\n');
        for (const p of v.problems) process.stderr.write(`problem: ${p}\n`);
        if (!v.nonceChecked) process.stderr.write('warning: no --nonce given: freshness not checked\n');
        process.stdout.write(v.ok ? 'verified: the quote, the log and every event\'s data agree\n' : 'NOT verified\n');
        return v.ok ? 0 : 1;
      }),
    );
}
