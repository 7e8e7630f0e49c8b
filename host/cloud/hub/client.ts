/**
 * IoT Hub module-identity REST client, as aziot-identityd's hub client calls it
 * (`identity/aziot-cloud-client-async/src/hub`): `https://{hub}/devices/{device}/modules[/{module}]` with
 * `api-version=2017-11-08-preview`, PUT to create, PUT + `If-Match` to update, DELETE + `If-Match`, GET one
 * or all. Path segments are percent-encoded with aziot's set (the URL path-segment set plus `=`). The
 * `Authorization` header comes from a callback (a device SAS signed in the key service); with X.509
 * credentials the callback returns undefined and the agent carries the TLS client certificate.
 */
import type https from 'node:https';
import { CloudHttpError, requestJson, type JsonRequest, type JsonResponse } from '../http.js';
import { HubError, statusError, transportError } from './errors.js';

export const HUB_API_VERSION = '2017-11-08-preview';

export interface SymmetricKeyAuth {
  type: 'sas';
  symmetricKey: { primaryKey: string; secondaryKey: string };
}
/** IoT Hub's Module JSON (the fields Edgeward reads or writes). */
export interface HubModule {
  moduleId: string;
  deviceId: string;
  managedBy?: string | null;
  generationId?: string;
  etag?: string;
  connectionState?: string;
  authentication?: SymmetricKeyAuth | { type: 'selfSigned' | 'certificateAuthority' | 'none'; x509Thumbprint?: unknown };
}

export interface HubClientOptions {
  /** The hub (or parent gateway) host name; may carry `:port`. */
  hubHostname: string;
  deviceId: string;
  /** The `Authorization` header value for the next request, or undefined when TLS client auth is used. */
  authorization: () => Promise<string | undefined>;
  agent?: https.Agent;
  /** Per request, connection to last byte (default 30 s, as aziot). */
  timeoutMs?: number;
  userAgent?: string;
}

/** aziot's ENCODE_SET: controls, non-ASCII, and ` "#<>?\`{}/%=` are percent-encoded in path segments. */
export function encodePathSegment(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b < 0x21 || b > 0x7e || ' "#<>?`{}/%='.includes(c) ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : c;
  }
  return out;
}

type Answer = Pick<JsonResponse, 'status' | 'body'>;

export class HubClient {
  private readonly timeoutMs: number;

  constructor(private readonly opts: HubClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  get hubHostname(): string {
    return this.opts.hubHostname;
  }

  get deviceId(): string {
    return this.opts.deviceId;
  }

  async listModules(): Promise<HubModule[]> {
    const a = await this.call('GET', undefined, 'list module identities');
    const list = parseJson<HubModule[]>(a, 'list module identities');
    if (!Array.isArray(list)) throw new HubError('protocol', 'list module identities: IoT Hub did not answer a JSON array');
    return list;
  }

  /** The module identity, or undefined when the hub has none (404 ModuleNotFound). */
  async getModule(moduleId: string): Promise<HubModule | undefined> {
    try {
      return parseJson<HubModule>(await this.call('GET', moduleId, `get module identity ${moduleId}`), moduleId);
    } catch (err) {
      if (err instanceof HubError && err.kind === 'not-found' && err.code === 'ModuleNotFound') return undefined;
      throw err;
    }
  }

  /** PUT without If-Match: create (409 `conflict` if it exists). */
  async createModule(m: Omit<HubModule, 'deviceId'>): Promise<HubModule> {
    const body = { ...m, deviceId: this.opts.deviceId };
    return parseJson<HubModule>(await this.call('PUT', m.moduleId, `create module identity ${m.moduleId}`, body), m.moduleId);
  }

  /** PUT with If-Match (`*` as aziot, or an etag): update (404 `not-found` if absent, 412 on a stale etag). */
  async updateModule(m: Omit<HubModule, 'deviceId'>, ifMatch = '*'): Promise<HubModule> {
    const body = { ...m, deviceId: this.opts.deviceId };
    return parseJson<HubModule>(await this.call('PUT', m.moduleId, `update module identity ${m.moduleId}`, body, ifMatch), m.moduleId);
  }

  /** DELETE with If-Match; true when deleted, false when the hub had no such module. */
  async deleteModule(moduleId: string, ifMatch = '*'): Promise<boolean> {
    try {
      await this.call('DELETE', moduleId, `delete module identity ${moduleId}`, undefined, ifMatch);
      return true;
    } catch (err) {
      if (err instanceof HubError && err.kind === 'not-found' && err.code === 'ModuleNotFound') return false;
      throw err;
    }
  }

  private url(moduleId: string | undefined): URL {
    const base = `devices/${encodePathSegment(this.opts.deviceId)}/modules${moduleId === undefined ? '' : `/${encodePathSegment(moduleId)}`}`;
    return new URL(`https://${this.opts.hubHostname}/${base}?api-version=${HUB_API_VERSION}`);
  }

  private async call(method: JsonRequest['method'], moduleId: string | undefined, what: string, body?: unknown, ifMatch?: string): Promise<Answer> {
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'edgeward' };
    const auth = await this.opts.authorization();
    if (auth !== undefined) headers.authorization = auth;
    if (ifMatch !== undefined) headers['if-match'] = ifMatch;
    const a = await requestJson({ method, url: this.url(moduleId).href, headers, body, timeoutMs: this.timeoutMs, ...(this.opts.agent ? { agent: this.opts.agent } : {}) }).catch((err: unknown) => {
      throw err instanceof CloudHttpError ? transportError(err, this.opts.hubHostname) : err;
    });
    if (a.status >= 300) throw statusError(a.status, a.body, what);
    return a;
  }
}

/** The answer's JSON (requestJson leaves a body that is not JSON as its text, an empty one undefined). */
function parseJson<T>(a: Answer, what: string): T {
  if (a.body === undefined || typeof a.body === 'string') throw new HubError('protocol', `${what}: IoT Hub answered ${a.status} with a body that is not JSON`);
  return a.body as T;
}
