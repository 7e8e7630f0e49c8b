/** Types of broker-protocol.mjs (see its header). */
export const ANSWER_LEN: number;
export const REQ_SEQ: number;
export const REQ_LEN: number;
export const REQ_FN: number;
export const ANSWER_SEQ: number;
export const FLAG_SLOTS: number;
export const ANSWER_NUMBER: number;
export const ANSWER_UNDEFINED: number;
export const ANSWER_TRUE: number;
export const ANSWER_FALSE: number;
export const MAX_NUMBER_ARGS: number;
export const PRIVATE_PREFIX: string;
export const ELEMENT_BYTES: number;
export function valueBytes(v: unknown): number;
