/** A transport that records every command and response, to assert what does (not) cross the TPM bus. */
import type { TpmTransport } from '../transport.js';

export class Tap implements TpmTransport {
  wire: Buffer[] = [];
  constructor(private readonly inner: TpmTransport) {}

  get description(): string {
    return `tap on ${this.inner.description}`;
  }

  get generation(): number | undefined {
    return this.inner.generation;
  }

  get connected(): boolean | undefined {
    return this.inner.connected;
  }

  async transmit(command: Buffer): Promise<Buffer> {
    this.wire.push(command);
    const rsp = await this.inner.transmit(command);
    this.wire.push(rsp);
    return rsp;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Did these bytes appear in any command or response since the last reset? */
  saw(secret: Buffer): boolean {
    return this.wire.some((b) => b.includes(secret));
  }
}
