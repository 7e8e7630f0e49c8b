/**
 * Per-module locks: operations on one module run one after another, so a start racing a stop or a
 * scheduled restart cannot leave two instances. Modules do not wait for each other.
 */
export class ModuleLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Run `fn` once every earlier operation on `name` has settled (whether it failed or not). */
  run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(name, tail);
    void tail.then(() => { if (this.tails.get(name) === tail) this.tails.delete(name); });
    return next;
  }
}
