/**
 * `[security_extensions]`: the signers whose components may run as `security-extension`s (host-level
 * agents that may be granted `edgeward:monitor/*`). Config only, never a manifest; an extension is always
 * checked under the "required" signature policy, whatever `[modules] signature_policy` says.
 *
 * ```toml
 * [security_extensions]
 * trusted_signers = ["file:///etc/edgeward/vendor-agent.pub.pem"]
 * ```
 */
import { z } from 'zod';

/** Most `[security_extensions] trusted_signers` files. */
export const MAX_EXTENSION_SIGNERS = 16;

export const securityExtensionsSchema = z
  .object({
    /** PEM public keys or CA certificates: absolute paths or file:/// URIs. Empty: no extension may run. */
    trusted_signers: z.array(z.string().regex(/^(\/|file:\/\/\/)/, 'an absolute path or a file:/// URI of a PEM file')).max(MAX_EXTENSION_SIGNERS).default([]),
  })
  .strict();

export type SecurityExtensionsConfig = z.infer<typeof securityExtensionsSchema>;
