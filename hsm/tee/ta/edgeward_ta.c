/*
 * Edgeward workload-key trusted application (GlobalPlatform TEE Internal Core API 1.1, OP-TEE).
 * BUILT, NOT RUN HERE: compile with the OP-TEE TA dev kit (TA_DEV_KIT_DIR) for the target; the
 * normal-world side is hsm/tee/optee.ts and its protocol is exercised against hsm/tee/emulator.ts.
 *
 * What it protects: the RSA private key is generated in the TEE and stored with TEE_STORAGE_PRIVATE, so it
 * is bound to this device (hardware unique key) and to this TA; the normal world cannot read it. What it
 * does not: it does not check what normal-world software asks (no measured launch in OP-TEE itself); any
 * process that can open /dev/tee0 can ask for an unwrap.
 */
#include <string.h>
#include <tee_internal_api.h>
#include "edgeward_ta.h"

static TEE_Result load_or_create_key(TEE_ObjectHandle *key, uint32_t *created)
{
	const char *id = EDGEWARD_TA_OBJECT_ID;
	TEE_ObjectHandle tmp = TEE_HANDLE_NULL;
	TEE_Result res = TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, id, strlen(id),
						  TEE_DATA_FLAG_ACCESS_READ, key);
	*created = 0;
	if (res != TEE_ERROR_ITEM_NOT_FOUND)
		return res;
	res = TEE_AllocateTransientObject(TEE_TYPE_RSA_KEYPAIR, EDGEWARD_TA_KEY_BITS, &tmp);
	if (res != TEE_SUCCESS)
		return res;
	res = TEE_GenerateKey(tmp, EDGEWARD_TA_KEY_BITS, NULL, 0);
	if (res == TEE_SUCCESS)
		res = TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, id, strlen(id),
						 TEE_DATA_FLAG_ACCESS_READ, tmp, NULL, 0, key);
	TEE_FreeTransientObject(tmp);
	if (res == TEE_SUCCESS)
		*created = 1;
	return res;
}

static TEE_Result get_pubkey(uint32_t types, TEE_Param params[4])
{
	TEE_ObjectHandle key = TEE_HANDLE_NULL;
	uint32_t created = 0, size = 0;
	uint8_t e[4] = { 0 };
	uint32_t elen = sizeof(e), i, exp = 0;
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_OUTPUT, TEE_PARAM_TYPE_VALUE_OUTPUT,
				     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	res = load_or_create_key(&key, &created);
	if (res != TEE_SUCCESS)
		return res;
	size = params[0].memref.size;
	res = TEE_GetObjectBufferAttribute(key, TEE_ATTR_RSA_MODULUS, params[0].memref.buffer, &size);
	params[0].memref.size = size;
	if (res == TEE_SUCCESS)
		res = TEE_GetObjectBufferAttribute(key, TEE_ATTR_RSA_PUBLIC_EXPONENT, e, &elen);
	for (i = 0; res == TEE_SUCCESS && i < elen; i++)
		exp = (exp << 8) | e[i];
	params[1].value.a = exp;
	params[1].value.b = created;
	TEE_CloseObject(key);
	return res;
}

static TEE_Result unwrap(uint32_t types, TEE_Param params[4])
{
	TEE_ObjectHandle key = TEE_HANDLE_NULL;
	TEE_OperationHandle op = TEE_HANDLE_NULL;
	uint32_t created = 0, outlen;
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
				     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE) ||
	    params[0].memref.size != EDGEWARD_TA_KEY_BITS / 8 ||
	    params[1].memref.size < EDGEWARD_TA_CONTENT_KEY_BYTES)
		return TEE_ERROR_BAD_PARAMETERS;
	res = load_or_create_key(&key, &created);
	if (res != TEE_SUCCESS)
		return res;
	res = TEE_AllocateOperation(&op, TEE_ALG_RSAES_PKCS1_OAEP_MGF1_SHA256, TEE_MODE_DECRYPT,
				    EDGEWARD_TA_KEY_BITS);
	if (res == TEE_SUCCESS)
		res = TEE_SetOperationKey(op, key);
	outlen = params[1].memref.size;
	if (res == TEE_SUCCESS)
		res = TEE_AsymmetricDecrypt(op, NULL, 0, params[0].memref.buffer, params[0].memref.size,
					    params[1].memref.buffer, &outlen);
	if (res == TEE_SUCCESS && outlen != EDGEWARD_TA_CONTENT_KEY_BYTES)
		res = TEE_ERROR_BAD_FORMAT;
	params[1].memref.size = res == TEE_SUCCESS ? outlen : 0;
	if (op != TEE_HANDLE_NULL)
		TEE_FreeOperation(op);
	TEE_CloseObject(key);
	return res;
}

/* The storage id of a master secret: EDGEWARD_TA_MASTER_PREFIX || the 16-byte id. */
static uint32_t master_object_id(uint8_t *out, const void *id)
{
	uint32_t n = strlen(EDGEWARD_TA_MASTER_PREFIX);

	memcpy(out, EDGEWARD_TA_MASTER_PREFIX, n);
	memcpy(out + n, id, EDGEWARD_TA_MASTER_ID_BYTES);
	return n + EDGEWARD_TA_MASTER_ID_BYTES;
}

static TEE_Result seal_master(uint32_t types, TEE_Param params[4])
{
	uint8_t oid[64];
	uint32_t olen;
	TEE_ObjectHandle obj = TEE_HANDLE_NULL;
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
				     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE) ||
	    params[0].memref.size != EDGEWARD_TA_MASTER_BYTES ||
	    params[1].memref.size < EDGEWARD_TA_MASTER_ID_BYTES)
		return TEE_ERROR_BAD_PARAMETERS;
	TEE_GenerateRandom(params[1].memref.buffer, EDGEWARD_TA_MASTER_ID_BYTES);
	olen = master_object_id(oid, params[1].memref.buffer);
	res = TEE_CreatePersistentObject(TEE_STORAGE_PRIVATE, oid, olen, TEE_DATA_FLAG_ACCESS_READ,
					 TEE_HANDLE_NULL, params[0].memref.buffer,
					 EDGEWARD_TA_MASTER_BYTES, &obj);
	params[1].memref.size = res == TEE_SUCCESS ? EDGEWARD_TA_MASTER_ID_BYTES : 0;
	if (res == TEE_SUCCESS)
		TEE_CloseObject(obj);
	return res;
}

static TEE_Result unseal_master(uint32_t types, TEE_Param params[4])
{
	uint8_t oid[64];
	uint32_t olen, got = 0;
	TEE_ObjectHandle obj = TEE_HANDLE_NULL;
	TEE_Result res;

	if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
				     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE) ||
	    params[0].memref.size != EDGEWARD_TA_MASTER_ID_BYTES ||
	    params[1].memref.size < EDGEWARD_TA_MASTER_BYTES)
		return TEE_ERROR_BAD_PARAMETERS;
	olen = master_object_id(oid, params[0].memref.buffer);
	res = TEE_OpenPersistentObject(TEE_STORAGE_PRIVATE, oid, olen, TEE_DATA_FLAG_ACCESS_READ, &obj);
	if (res != TEE_SUCCESS)
		return res;
	res = TEE_ReadObjectData(obj, params[1].memref.buffer, EDGEWARD_TA_MASTER_BYTES, &got);
	if (res == TEE_SUCCESS && got != EDGEWARD_TA_MASTER_BYTES)
		res = TEE_ERROR_CORRUPT_OBJECT;
	params[1].memref.size = res == TEE_SUCCESS ? got : 0;
	TEE_CloseObject(obj);
	return res;
}

TEE_Result TA_CreateEntryPoint(void) { return TEE_SUCCESS; }
void TA_DestroyEntryPoint(void) {}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param params[4], void **ctx)
{
	(void)types; (void)params; (void)ctx;
	return TEE_SUCCESS;
}

void TA_CloseSessionEntryPoint(void *ctx) { (void)ctx; }

TEE_Result TA_InvokeCommandEntryPoint(void *ctx, uint32_t cmd, uint32_t types, TEE_Param params[4])
{
	(void)ctx;
	switch (cmd) {
	case EDGEWARD_TA_CMD_GET_PUBKEY:
		return get_pubkey(types, params);
	case EDGEWARD_TA_CMD_UNWRAP:
		return unwrap(types, params);
	case EDGEWARD_TA_CMD_SEAL_MASTER:
		return seal_master(types, params);
	case EDGEWARD_TA_CMD_UNSEAL_MASTER:
		return unseal_master(types, params);
	default:
		return TEE_ERROR_NOT_SUPPORTED;
	}
}
