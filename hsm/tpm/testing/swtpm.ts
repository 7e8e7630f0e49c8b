/**
 * A TPM 2.0 simulator for tests and the benchmark: swtpm on a free loopback port with a temporary state
 * directory, started with startup-clear so it is ready for commands. Everything is bounded in time; a
 * missing swtpm binary is an error with the package to install (tests must fail, not skip, when it is
 * missing — CI installs swtpm).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export class Swtpm {
  private child: ChildProcess | undefined;
  private stderr = '';

  private constructor(
    readonly stateDir: string,
    readonly port: number,
    private readonly ownsDir: boolean,
    /** Send TPM2_Startup at launch (swtpm --flags startup-clear); false leaves that to the client. */
    private readonly startup: boolean,
  ) {}

  /** TCTI string for Edgeward and for tpm2-tools (TPM2TOOLS_TCTI). */
  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  /** Environment for running tpm2-tools against this simulator. */
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, TPM2TOOLS_TCTI: this.tcti };
  }

  /** Start a fresh simulator (new temp state dir unless `stateDir` is given). */
  static async start(opts: { stateDir?: string; startup?: boolean } = {}): Promise<Swtpm> {
    const dir = opts.stateDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'edgeward-swtpm-')));
    const port = await freePortPair();
    const sim = new Swtpm(dir, port, opts.stateDir === undefined, opts.startup ?? true);
    await sim.launch();
    return sim;
  }

  private async launch(): Promise<void> {
    const args = [
      'socket', '--tpm2',
      '--server', `type=tcp,port=${this.port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${this.port + 1},bindaddr=127.0.0.1`,
      '--tpmstate', `dir=${this.stateDir}`,
      '--flags', this.startup ? 'not-need-init,startup-clear' : 'not-need-init',
    ];
    const child = spawn('swtpm', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new Error('swtpm is not installed (needed for TPM tests): apt-get install swtpm swtpm-tools tpm2-tools') : err),
      );
      child.once('spawn', () => resolve());
    });
    await spawned;
    this.child = child;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`swtpm exited with ${child.exitCode}: ${this.stderr.trim()}`);
      if (await canConnect(this.port)) return;
      await sleep(25);
    }
    await this.stop();
    throw new Error(`swtpm did not listen on 127.0.0.1:${this.port} within ${START_TIMEOUT_MS} ms: ${this.stderr.trim()}`);
  }

  /** Stop the simulator process, keeping its state (for `restart()` later). */
  async stopProcess(): Promise<void> {
    await this.kill();
  }

  /** Stop and start again on the same state (a power cycle; NV contents survive). */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  private async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Stop the simulator and remove the state dir if this harness created it. */
  async stop(): Promise<void> {
    await this.kill();
    if (this.ownsDir) await fs.rm(this.stateDir, { recursive: true, force: true });
  }
}

/** Run a tpm2-tools command against `sim`; resolves stdout, rejects with stderr on failure. */
export function tpm2(sim: Swtpm | undefined, tool: string, args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      tool,
      args,
      { env: sim ? sim.env : process.env, timeout: opts.timeoutMs ?? 60_000, encoding: 'buffer', cwd: opts.cwd, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException;
          if (e.code === 'ENOENT') reject(new Error(`${tool} is not installed: apt-get install tpm2-tools libtss2-tcti-swtpm0`));
          else reject(new Error(`${tool} ${args.join(' ')} failed: ${stderr.toString().trim() || err.message}`));
        } else resolve(stdout);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port P such that P and P+1 are free on 127.0.0.1 (server and control ports). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + Math.floor(Math.random() * 40000);
    if ((await portFree(p)) && (await portFree(p + 1))) return p;
  }
  throw new Error('no free loopback port pair for swtpm');
}
