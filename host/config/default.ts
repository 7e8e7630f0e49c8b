/**
 * The embedded default config: runs with no file at all. Development key store, quickstart Edge CA,
 * sockets and state under the per-user Edgeward home, no cloud, and the sample `hello` module.
 * `@HOME@` is replaced by the Edgeward home directory at load time.
 */
export const EMBEDDED_DEFAULT_TOML = `# Edgeward embedded default (development): no cloud, file key store, quickstart Edge CA.
hostname = "edgeward-dev"
state_dir = "@HOME@/state"

[provisioning]
source = "none"

[keys]
backend = "file"

[edge_ca]
auto_generated_edge_ca_expiry_days = 90

[connect]
management_uri = "unix://@HOME@/run/mgmt.sock"
workload_uri = "unix://@HOME@/run/workload.sock"

[listen]
management_uri = "unix://@HOME@/run/mgmt.sock"
workload_uri = "unix://@HOME@/run/workload.sock"

[log]
level = "info"

[runtime]
deployment = "builtin:default"

# Module signatures: "optional" runs unsigned modules (signer "unsigned"); a signed module must verify.
[modules]
signature_policy = "optional"
trusted_signers = []
`;
