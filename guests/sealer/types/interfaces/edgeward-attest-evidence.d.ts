declare module 'edgeward:attest/evidence@0.1.0' {
  /**
   * Evidence over `nonce` (1..64 bytes, the verifier's freshness challenge).
   */
  export function evidence(nonce: Uint8Array): Report;
  export type EvidenceError = EvidenceErrorUnavailable | EvidenceErrorLimitExceeded | EvidenceErrorInvalidArgument;
  /**
   * No TPM, or measured launch off, or the TPM failed: the message says which.
   */
  export interface EvidenceErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * The evidence (mostly the event log) is larger than the module's `max_value_bytes`, or more quotes
   * than the host allows a module (a burst of 10, then one a second).
   */
  export interface EvidenceErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
  /**
   * A nonce of 0 or more than 64 bytes.
   */
  export interface EvidenceErrorInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
  /**
   * A TPM quote over the measured-launch PCRs with the caller's nonce, and what a verifier needs to check it:
   * `tpm2_checkquote -u ak.pub.pem -m quote -s signature -f pcrs -g sha256 -q <nonce hex> -e event-log`.
   */
  export interface Report {
    /**
     * TPMS_ATTEST as the TPM signed it (tpm2-tools' quote.msg); its extraData is the nonce.
     */
    quote: Uint8Array,
    /**
     * TPMT_SIGNATURE, TPM-marshalled (quote.sig).
     */
    signature: Uint8Array,
    /**
     * The quoted PCR values in tpm2-tools' format (quote.pcrs).
     */
    pcrs: Uint8Array,
    /**
     * The TCG PC Client crypto-agile event log (eventlog.bin); its module-start events name each measured component.
     */
    eventLog: Uint8Array,
    /**
     * The attestation key's public key, SPKI PEM (ak.pub.pem).
     */
    akPublicPem: string,
    /**
     * The caller's own measurement: `sha256:<hex>` of its plaintext component.
     */
    measurement: string,
    /**
     * The runtime PCR (the daemon's code and config), quoted.
     */
    runtimePcr: number,
    /**
     * The modules PCR (each module start), quoted.
     */
    modulesPcr: number,
  }
}
