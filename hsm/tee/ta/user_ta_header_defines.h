/* OP-TEE TA properties for the Edgeward workload-key TA (built, not run here). */
#ifndef USER_TA_HEADER_DEFINES_H
#define USER_TA_HEADER_DEFINES_H
#include "edgeward_ta.h"
#define TA_UUID EDGEWARD_TA_UUID
#define TA_FLAGS TA_FLAG_EXEC_DDR
#define TA_STACK_SIZE (8 * 1024)
#define TA_DATA_SIZE (32 * 1024)
#endif
