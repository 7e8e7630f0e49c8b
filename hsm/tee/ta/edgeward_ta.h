/*
 * Edgeward workload-key trusted application: command protocol (shared by the TA and the normal-world
 * client, hsm/tee/optee.ts, which mirrors these numbers). BUILT, NOT RUN HERE: OP-TEE cannot run on the
 * machines this repository is developed on; the protocol is tested against hsm/tee/emulator.ts.
 *
 * The TA generates one RSA-2048 key on first use and keeps it in OP-TEE secure storage
 * (TEE_STORAGE_PRIVATE, bound to the device's hardware unique key and to this TA's UUID). The private key
 * never leaves the TA; the normal world only gets the public key and unwrapped content keys.
 */
#ifndef EDGEWARD_TA_H
#define EDGEWARD_TA_H

/* 5f0c8a4e-2b7d-4c19-9e63-a1d4b8f27c05 */
#define EDGEWARD_TA_UUID \
	{ 0x5f0c8a4e, 0x2b7d, 0x4c19, { 0x9e, 0x63, 0xa1, 0xd4, 0xb8, 0xf2, 0x7c, 0x05 } }

/*
 * GET_PUBKEY
 *   params[0] MEMREF_OUTPUT  RSA modulus, big-endian, 256 bytes (TEE_ERROR_SHORT_BUFFER with the size if smaller)
 *   params[1] VALUE_OUTPUT   a = public exponent, b = key generation (1 = created now, 0 = existing)
 */
#define EDGEWARD_TA_CMD_GET_PUBKEY 0

/*
 * UNWRAP
 *   params[0] MEMREF_INPUT   wrapped content key: RSAES-OAEP, MGF1-SHA256, SHA-256, empty label; 256 bytes
 *   params[1] MEMREF_OUTPUT  content key (32 bytes)
 *   TEE_ERROR_BAD_PARAMETERS for wrong parameter types or sizes, TEE_ERROR_CIPHERTEXT_INVALID (or the
 *   implementation's decrypt error) when the OAEP decoding fails.
 */
#define EDGEWARD_TA_CMD_UNWRAP 1

/*
 * SEAL_MASTER (the seal master secret of edgeward:attest/seal)
 *   params[0] MEMREF_INPUT   the secret, 32 bytes
 *   params[1] MEMREF_OUTPUT  its id, 16 bytes (random, chosen by the TA): the normal world's "blob"
 *   The TA stores the secret in TEE_STORAGE_PRIVATE as object "edgeward-seal-master/" || id (bound to this
 *   device and this TA, not to a normal-world measurement). TEE_ERROR_BAD_PARAMETERS for wrong types or sizes.
 */
#define EDGEWARD_TA_CMD_SEAL_MASTER 2

/*
 * UNSEAL_MASTER
 *   params[0] MEMREF_INPUT   an id from SEAL_MASTER, 16 bytes
 *   params[1] MEMREF_OUTPUT  the secret, 32 bytes
 *   TEE_ERROR_ITEM_NOT_FOUND when no secret has that id (another device, or its storage was wiped).
 */
#define EDGEWARD_TA_CMD_UNSEAL_MASTER 3

#define EDGEWARD_TA_MASTER_BYTES 32
#define EDGEWARD_TA_MASTER_ID_BYTES 16
#define EDGEWARD_TA_MASTER_PREFIX "edgeward-seal-master/"

#define EDGEWARD_TA_KEY_BITS 2048
#define EDGEWARD_TA_CONTENT_KEY_BYTES 32
#define EDGEWARD_TA_OBJECT_ID "edgeward-workload-key"

#endif
