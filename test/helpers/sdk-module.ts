/**
 * A module as the official SDK runs it: `ModuleClient.fromEnvironment` (azure-iot-device) in a child
 * process whose environment is only what `edgeward module env` printed, capturing the SAS token and trust
 * bundle the SDK obtained through the workload API.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './cli.js';

/** The SDK's own code path: fromEnvironment → getTrustBundle → IotEdgeAuthenticationProvider._sign. */
const SDK_SCRIPT = `
const { ModuleClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
let auth, ca;
class CapturingMqtt extends Mqtt {
  constructor(a) { super(a); auth = a; }
  setOptions(o, cb) { ca = o.ca; if (cb) cb(); }
}
ModuleClient.fromEnvironment(CapturingMqtt, (err, client) => {
  if (err) { console.error('fromEnvironment failed: ' + err.message); process.exit(3); }
  auth.getDeviceCredentials((err2, creds) => {
    if (err2) { console.error('getDeviceCredentials failed: ' + err2.message); process.exit(4); }
    console.log(JSON.stringify({ token: creds.sharedAccessSignature, ca, moduleId: creds.moduleId, host: creds.host }));
    process.exit(0);
  });
});
`;

export interface SdkCredentials {
  token: string;
  ca: string;
  moduleId: string;
  host: string;
}

/** Run the SDK with exactly `moduleEnv` (plus PATH and NODE_PATH); throws with its stderr if it fails. */
export function sdkModuleCredentials(moduleEnv: Record<string, string>): SdkCredentials {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_PATH: path.join(ROOT, 'node_modules'), ...moduleEnv };
  const r = spawnSync(process.execPath, ['-e', SDK_SCRIPT], { env: childEnv, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`the SDK module failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as SdkCredentials;
}
