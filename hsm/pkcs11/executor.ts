/**
 * Runs a token's cryptographic operations (Init + the single-part call), inline or on worker threads.
 *
 * Inline (worker_threads = 0, the default) is the fastest for local tokens: measured on SoftHSM2, a thread
 * hop per signature costs more than the signature (see bench/keys.ts), and each call blocks the event loop
 * for well under a millisecond. With worker threads, a worker does the whole sequence synchronously on its
 * own thread (pkcs11js has no async *Init, and tokens may do real work there: SoftHSM2 unwraps the private
 * key in C_SignInit); the event loop only posts a message, so a network HSM's latency never stalls it.
 *
 * Sessions and object handles are process-wide in PKCS#11 (v2.40 §5.6), so a worker uses the handles the
 * main thread opened; it loads the same library (dlopen returns the loaded one) and never calls
 * C_Initialize or C_Finalize. The session pool still guarantees one operation per session at a time.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import { KeyError } from '../keys/types.js';
import type { Handle } from './library.js';

export type CryptoOp = 'sign' | 'encrypt' | 'decrypt';

/** Thrown for a failed operation; `stage` says whether Init or the call itself refused. */
export class OperationError extends Error {
  constructor(
    cause: Error,
    readonly stage: 'init' | 'call',
  ) {
    super(cause.message, { cause });
    this.name = 'OperationError';
  }
}

interface Reply {
  id: number;
  ok?: Uint8Array;
  err?: { message: string; code?: number; method?: string; stage: 'init' | 'call' };
}

// CommonJS worker source (eval): the worker requires pkcs11js by absolute path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const pkcs11js = require(workerData.pkcs11js);
const m = new pkcs11js.PKCS11();
m.load(workerData.library);
const buf = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
function mech(x) {
  const p = x.parameter;
  if (p instanceof Uint8Array) {
    x.parameter = buf(p);
  } else if (p && typeof p === 'object') {
    for (const k of Object.keys(p)) {
      if (p[k] instanceof Uint8Array) p[k] = buf(p[k]);
    }
  }
  return x;
}
const INIT = { sign: 'C_SignInit', encrypt: 'C_EncryptInit', decrypt: 'C_DecryptInit' };
const CALL = { sign: 'C_Sign', encrypt: 'C_Encrypt', decrypt: 'C_Decrypt' };
parentPort.on('message', (msg) => {
  const s = buf(msg.session);
  let stage = 'init';
  try {
    m[INIT[msg.op]](s, mech(msg.mechanism), buf(msg.key));
    stage = 'call';
    const r = m[CALL[msg.op]](s, buf(msg.data), Buffer.alloc(msg.outLen));
    parentPort.postMessage({ id: msg.id, ok: r });
  } catch (e) {
    parentPort.postMessage({ id: msg.id, err: { message: String(e && e.message), code: e && e.code, method: e && e.method, stage } });
  }
});
`;

export class OperationExecutor {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closed = false;

  constructor(library: string, threads: number, private readonly inline?: P.PKCS11) {
    const pkcs11jsPath = createRequire(import.meta.url).resolve('pkcs11js');
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { library, pkcs11js: pkcs11jsPath } });
      w.unref(); // a forgotten close() must not keep the process alive
      w.on('message', (r: Reply) => this.settle(r));
      w.on('error', (err: unknown) => this.failAll(err instanceof Error ? err : new Error(String(err))));
      return w;
    });
  }

  /**
   * Run Init + call for `op` on `session`. `lane` picks the worker (the session's index in the pool), so
   * one session is always served by one thread.
   */
  run(lane: number, op: CryptoOp, session: Handle, mechanism: P.Mechanism, key: Handle, data: Buffer, outLen: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new KeyError('backend-unavailable', 'the PKCS#11 executor is closed'));
    if (this.workers.length === 0 && this.inline) return Promise.resolve(runInline(this.inline, op, session, mechanism, key, data, outLen));
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[lane % this.workers.length]!.postMessage({ id, op, session, mechanism, key, data, outLen });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.failAll(new KeyError('backend-unavailable', 'the PKCS#11 executor is closed'));
  }

  private settle(r: Reply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (r.ok) return p.resolve(Buffer.from(r.ok.buffer, r.ok.byteOffset, r.ok.byteLength));
    const e = r.err!;
    const cause = e.code !== undefined ? new pkcs11js.Pkcs11Error(e.message, e.code, e.method) : new Error(e.message);
    p.reject(new OperationError(cause, e.stage));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

function runInline(m: P.PKCS11, op: CryptoOp, session: Handle, mechanism: P.Mechanism, key: Handle, data: Buffer, outLen: number): Buffer {
  let stage: 'init' | 'call' = 'init';
  try {
    if (op === 'sign') m.C_SignInit(session, mechanism, key);
    else if (op === 'encrypt') m.C_EncryptInit(session, mechanism, key);
    else m.C_DecryptInit(session, mechanism, key);
    stage = 'call';
    const out = Buffer.alloc(outLen);
    return op === 'sign' ? m.C_Sign(session, data, out) : op === 'encrypt' ? m.C_Encrypt(session, data, out) : m.C_Decrypt(session, data, out);
  } catch (err) {
    throw new OperationError(err instanceof Error ? err : new Error(String(err)), stage);
  }
}
