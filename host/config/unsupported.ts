/**
 * IoT Edge features this build does not support, and what to use instead. One place for the wording:
 * config loading, the start-up preflight and `edgeward config import` all say the same thing.
 */

/** The Edge CA choices Edgeward does support, for every "use instead" line. */
export const EDGE_CA_INSTEAD = 'leave [edge_ca] without method for a quickstart Edge CA generated on the device, or give cert = "file:///…" and pk = "file:///…" for an Edge CA issued elsewhere';

/** `[edge_ca] method = …` (an issued Edge CA): none of IoT Edge's issuers exists here yet. */
export function edgeCaMethodMessage(method: unknown): string {
  const what: Record<string, string> = {
    est: 'an Edge CA issued by an EST server: EST is not supported yet',
    local_ca: 'an Edge CA issued by [cert_issuance.local_ca]: a local issuing CA is not supported yet',
    self_signed: 'a self-signed issued Edge CA is not supported as such',
  };
  const m = typeof method === 'string' ? method : JSON.stringify(method);
  return `method = "${m}" (${what[m] ?? 'not a known issuance method'}): ${EDGE_CA_INSTEAD}`;
}

/** Keys of IoT Edge's issued `[edge_ca]` variant; meaningless without `method`, reported through it. */
export const ISSUED_EDGE_CA_KEYS = ['common_name', 'expiry_days', 'url', 'username', 'password', 'identity_cert', 'identity_pk', 'bootstrap_identity_cert', 'bootstrap_identity_pk'] as const;

/** An X.509 identity (DPS or manual) whose key is in an HSM: it needs the key service to be that HSM. */
export const PKCS11_IDENTITY_KEY = 'a pkcs11: identity_pk is used where it is, in the key service\'s token (the TLS handshake is signed there; the key is never copied out): set [keys] backend = "pkcs11" with that token, or give identity_pk = "file:///…"';

/** An `fd://` socket URI where it cannot be used: in [connect], or malformed in [listen]. */
export function fdSocketMessage(uri: string, example: string, side: 'connect' | 'listen'): string {
  return side === 'connect'
    ? `"${uri}" is a systemd-passed socket, which only the daemon can use: [connect] is where the CLI connects, so give the socket's path, such as "${example}" (keep fd:// in [listen])`
    : `"${uri}" is not a socket name: fd://NAME with the unit's FileDescriptorName (e.g. "fd://aziot-edged.mgmt.socket"), or a unix socket URI such as "${example}"`;
}
