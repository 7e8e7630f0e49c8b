/** Types of validate.mjs (plain ESM so the sandbox worker can load it; see its header). */
import type { InstanceType, ValType } from './types.js';

export class BoundaryValueError extends TypeError {}
export function camel(name: string): string;
export function pascal(name: string): string;
export function check(t: ValType, v: unknown, where: string): void;
export function guardInterface<T extends Record<string, unknown>>(iface: string, types: InstanceType, fns: T): T;
export function functionCheckers(iface: string, types: InstanceType): Map<string, (args: unknown[]) => void>;
