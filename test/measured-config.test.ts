/**
 * `[measurement]` (host/config/measurement.ts): defaults PCR 12/13, only the OS's non-resettable PCRs 8–15,
 * two different PCRs; and the measured config (host/measure/code.ts) is canonical and carries no secret.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../host/config/load.js';
import { measuredConfig } from '../host/measure/code.js';
import { configProblems } from './helpers/config.js';

const env = { EDGEWARD_HOME: '/tmp/ew-measure-config' };
const base = '[provisioning]\nsource = "manual"\nconnection_string = "HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=c2VjcmV0c2VjcmV0"\n';

describe('[measurement] config', () => {
  it('defaults to PCR 12 (runtime) and 13 (modules), enabled, integrity every 300 s', () => {
    expect(parseConfigText(base, 't.toml', env).config.measurement).toEqual({ enabled: true, runtime_pcr: 12, modules_pcr: 13, integrity_interval_s: 300 });
  });

  it('refuses a resettable or firmware PCR, and one PCR for both', () => {
    expect(configProblems(`${base}[measurement]\nruntime_pcr = 16\n`, env)).toEqual([expect.objectContaining({ path: 'measurement.runtime_pcr', message: expect.stringContaining('resettable') })]);
    expect(configProblems(`${base}[measurement]\nmodules_pcr = 7\n`, env)[0]).toMatchObject({ path: 'measurement.modules_pcr' });
    expect(configProblems(`${base}[measurement]\nruntime_pcr = 14\nmodules_pcr = 14\n`, env)[0]).toMatchObject({ path: 'measurement.modules_pcr', message: 'runtime_pcr and modules_pcr must differ' });
  });

  it('measures the config without its secrets, the same however the TOML is ordered', () => {
    const tpm = '[tpm]\ntcti = "swtpm:host=127.0.0.1,port=2321"\n[tpm.hierarchy_authorization]\nowner = "ownerpass"\n';
    const a = measuredConfig(parseConfigText(`${base}${tpm}[measurement]\nruntime_pcr = 11\nmodules_pcr = 15\n`, 't.toml', env).config);
    const b = measuredConfig(parseConfigText(`[measurement]\nmodules_pcr = 15\nruntime_pcr = 11\n${tpm}${base}`, 't.toml', env).config);
    expect(a).toEqual(b);
    expect(a.canonical).not.toContain('c2VjcmV0c2VjcmV0');
    expect(a.canonical).not.toContain('ownerpass');
    const c = measuredConfig(parseConfigText(`${base}${tpm}[measurement]\nruntime_pcr = 11\nmodules_pcr = 14\n`, 't.toml', env).config);
    expect(c.digest).not.toBe(a.digest);
  });
});
