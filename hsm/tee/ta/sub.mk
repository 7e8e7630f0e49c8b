# OP-TEE TA build (built, not run here): make -C hsm/tee/ta TA_DEV_KIT_DIR=<optee_os>/out/arm/export-ta_arm64 CROSS_COMPILE=aarch64-linux-gnu-
global-incdirs-y += .
srcs-y += edgeward_ta.c
