/**
 * What the roots of trust need to be opened, in their own terms. The daemon's config (host/config) maps
 * onto these: its zod schema's types are checked assignable to them there (host/config/hsm-options.ts),
 * so a config field the roots of trust read cannot drift from the schema, and hsm/ never imports host/.
 * Field names follow the config file's (IoT Edge's) spelling, so the mapping is the identity.
 */

/** `[keys.pkcs11]`: a PKCS#11 token and how to log in. */
export interface Pkcs11Options {
  library: string;
  token_label?: string | undefined;
  token_serial?: string | undefined;
  slot?: number | undefined;
  pin?: string | undefined;
  pin_file?: string | undefined;
  /** Sessions in the pool. */
  sessions: number;
  /** 0 or absent: operations run on the caller's thread; N > 0: on N worker threads. */
  worker_threads?: number | undefined;
}

/** `[tpm]`: how to reach the TPM, and the hierarchy auth values needed only to create the EK/SRK. */
export interface TpmOptions {
  tcti: string;
  hierarchy_authorization?: { endorsement?: string | undefined; owner?: string | undefined } | undefined;
}

/** `[[principal]]`: which OS user or module may use which daemon key ids (wildcards). */
export interface PrincipalOptions {
  name: string;
  uid?: number | undefined;
  module?: string | undefined;
  keys: string[];
}

/** What opens the key service: the backend, its options, and the principals. */
export interface KeyServiceConfig {
  keys: { backend: 'file' | 'pkcs11' | 'tpm'; pkcs11?: Pkcs11Options | undefined };
  tpm?: TpmOptions | undefined;
  principal: PrincipalOptions[];
}

/** `[edge_ca.auto_renew]`. */
export interface AutoRenewOptions { rotate_key: boolean; threshold: string; retry: string }

/** `[edge_ca]`: preloaded (`cert` + `pk` URIs) or quickstart. */
export type EdgeCaOptions =
  | { cert: string; pk: string }
  | { auto_generated_edge_ca_expiry_days: number; subject?: Record<string, string> | undefined; auto_renew?: AutoRenewOptions | undefined };

/** What the certificate service reads: the Edge CA and the extra trust bundle (`file:///` URI). */
export interface CertsConfig {
  edge_ca: EdgeCaOptions;
  trust_bundle_cert?: string | undefined;
}
