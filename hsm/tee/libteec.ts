/**
 * The real TEE Client API binding: libteec (optee-client) through koffi, an FFI for Node. BUILT, NOT RUN
 * HERE: neither koffi nor libteec is installed on these machines (Edgeward adds no dependency for it), and
 * OP-TEE cannot run here; the OP-TEE backend is tested against emulator.ts instead. On a device: install
 * `koffi` (npm) and optee-client (libteec.so.1, tee-supplicant running), install the TA, then
 * `OpteeTeeBackend.open(await loadLibteec())`.
 *
 * Loaded only when /dev/tee0 exists. TEEC_Context and TEEC_Session are kept as opaque, zeroed native blocks
 * larger than any libteec version's struct; TEEC_Operation is declared field by field (GP TEE Client API
 * §4.3: started, paramTypes, params[4] union {tmpref, memref, value}, session pointer) and its temporary
 * memory references point at native buffers allocated with koffi.alloc.
 */
import { existsSync } from 'node:fs';
import { TeeError } from './port.js';
import { TEEC, type TeecBinding, type TeecParam, type TeecResult } from './optee.js';

const OPAQUE_BYTES = 256;
const PARAM = { none: 0, 'value-output': 2, 'memref-input': 5, 'memref-output': 6 } as const;

/** koffi is untyped here: it is not a dependency. */
type Koffi = any;

function uuidStruct(uuid: string): { timeLow: number; timeMid: number; timeHiAndVersion: number; clockSeqAndNode: number[] } {
  const h = uuid.replace(/-/g, '');
  return {
    timeLow: parseInt(h.slice(0, 8), 16), timeMid: parseInt(h.slice(8, 12), 16), timeHiAndVersion: parseInt(h.slice(12, 16), 16),
    clockSeqAndNode: [...Buffer.from(h.slice(16), 'hex')],
  };
}

function declare(koffi: Koffi, lib: Koffi): Record<string, (...a: any[]) => any> {
  koffi.struct('TEEC_UUID', { timeLow: 'uint32_t', timeMid: 'uint16_t', timeHiAndVersion: 'uint16_t', clockSeqAndNode: koffi.array('uint8_t', 8) });
  koffi.struct('TEEC_TempMemoryReference', { buffer: 'void *', size: 'size_t' });
  koffi.struct('TEEC_RegisteredMemoryReference', { parent: 'void *', size: 'size_t', offset: 'size_t' });
  koffi.struct('TEEC_Value', { a: 'uint32_t', b: 'uint32_t' });
  koffi.union('TEEC_Parameter', { tmpref: 'TEEC_TempMemoryReference', memref: 'TEEC_RegisteredMemoryReference', value: 'TEEC_Value' });
  koffi.struct('TEEC_Operation', { started: 'uint32_t', paramTypes: 'uint32_t', params: koffi.array('TEEC_Parameter', 4), session: 'void *' });
  return {
    init: lib.func('uint32_t TEEC_InitializeContext(const char *name, void *context)'),
    fin: lib.func('void TEEC_FinalizeContext(void *context)'),
    open: lib.func('uint32_t TEEC_OpenSession(void *context, void *session, const TEEC_UUID *uuid, uint32_t method, const void *data, void *op, _Out_ uint32_t *origin)'),
    close: lib.func('void TEEC_CloseSession(void *session)'),
    invoke: lib.func('uint32_t TEEC_InvokeCommand(void *session, uint32_t cmd, _Inout_ TEEC_Operation *op, _Out_ uint32_t *origin)'),
  };
}

class LibteecBinding implements TeecBinding {
  private next = 1;
  private readonly handles = new Map<number, Buffer>();
  constructor(private readonly koffi: Koffi, private readonly f: Record<string, (...a: any[]) => any>) {}

  private keep(b: Buffer): number {
    const h = this.next++;
    this.handles.set(h, b);
    return h;
  }

  initializeContext(name: string | null): { returnCode: number; context: number } {
    const ctx = Buffer.alloc(OPAQUE_BYTES);
    const rc = this.f.init!(name, ctx) as number;
    return { returnCode: rc >>> 0, context: rc === TEEC.SUCCESS ? this.keep(ctx) : 0 };
  }

  openSession(context: number, uuid: string): TeecResult & { session: number } {
    const s = Buffer.alloc(OPAQUE_BYTES);
    const origin = [0];
    const rc = (this.f.open!(this.handles.get(context), s, uuidStruct(uuid), 0, null, null, origin) as number) >>> 0;
    return { returnCode: rc, origin: origin[0]!, params: [], session: rc === TEEC.SUCCESS ? this.keep(s) : 0 };
  }

  invokeCommand(session: number, commandId: number, params: TeecParam[]): TeecResult {
    const natives: unknown[] = [];
    try {
      const op = { started: 1, paramTypes: 0, params: [] as unknown[], session: null };
      params.forEach((p, i) => {
        op.paramTypes |= PARAM[p.type] << (4 * i);
        if (p.type === 'memref-input' || p.type === 'memref-output') {
          const size = p.type === 'memref-input' ? p.buffer.length : p.size;
          const mem = this.koffi.alloc('uint8_t', size);
          natives.push(mem);
          if (p.type === 'memref-input') this.koffi.encode(mem, 'uint8_t', [...p.buffer], size);
          op.params.push({ tmpref: { buffer: mem, size } });
        } else op.params.push({ value: { a: 0, b: 0 } });
      });
      const origin = [0];
      const rc = (this.f.invoke!(this.handles.get(session), commandId, op, origin) as number) >>> 0;
      const out = params.map((p, i) => {
        const got = op.params[i] as { tmpref: { buffer: unknown; size: number }; value: { a: number; b: number } };
        if (p.type === 'memref-output') return { buffer: Buffer.from(this.koffi.decode(got.tmpref.buffer, 'uint8_t', Math.min(got.tmpref.size, p.size)) as number[]) };
        if (p.type === 'value-output') return { a: got.value.a, b: got.value.b };
        return {};
      });
      return { returnCode: rc, origin: origin[0]!, params: out };
    } finally {
      for (const m of natives) this.koffi.free(m);
    }
  }

  closeSession(session: number): void {
    const s = this.handles.get(session);
    if (s) this.f.close!(s);
    this.handles.delete(session);
  }

  finalizeContext(context: number): void {
    const c = this.handles.get(context);
    if (c) this.f.fin!(c);
    this.handles.delete(context);
  }
}

/** Load libteec through koffi; refuses clearly when /dev/tee0, koffi or libteec is missing. */
export async function loadLibteec(opts: { device?: string; library?: string } = {}): Promise<TeecBinding> {
  const device = opts.device ?? '/dev/tee0';
  if (!existsSync(device)) throw new TeeError('unavailable', `${device} does not exist: this device has no OP-TEE (use the TPM backend)`);
  const spec = 'koffi';
  let koffi: Koffi;
  try {
    koffi = ((await import(spec)) as { default?: Koffi }).default ?? (await import(spec));
  } catch {
    throw new TeeError('unavailable', 'the OP-TEE backend needs the koffi FFI (npm install koffi) and libteec.so.1 from optee-client; built, not run on the development machines');
  }
  let lib: Koffi;
  try {
    lib = koffi.load(opts.library ?? 'libteec.so.1');
  } catch (err) {
    throw new TeeError('unavailable', `cannot load libteec (install optee-client and start tee-supplicant): ${(err as Error).message.split('\n')[0]}`);
  }
  return new LibteecBinding(koffi, declare(koffi, lib));
}
