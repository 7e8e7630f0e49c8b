/**
 * A small metrics registry: counter and gauge families with fixed label names, rendered in the Prometheus
 * text exposition format 0.0.4 (`# HELP`, `# TYPE`, one group of samples per family, label values
 * escaped). Bounded: a family keeps at most MAX_SERIES label sets; the increments of any further one are
 * dropped and counted in `edgeward_metrics_series_dropped_total`, so a flood of names cannot grow memory.
 */

/** Label sets one family keeps at most (modules are at most 64 per manifest; statuses and codes are few). */
export const MAX_SERIES = 1000;

export type MetricType = 'counter' | 'gauge';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value in 0.0.4 text: backslash, double quote and line feed escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text in 0.0.4: backslash and line feed escaped (a quote stays as it is). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as Go's ParseFloat reads it: NaN, +Inf, -Inf, or a JS number literal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Series {
  values: readonly string[];
  value: number;
}

/** One metric family: a name, its help, its type and its series by label values. */
export class Family<L extends string = string> {
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly L[],
    private readonly onDropped: () => void,
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
    for (const l of labelNames) if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`invalid label name "${l}" on ${name}`);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
  }

  /** Add `by` (≥ 0 for a counter) to the series of `labels`. */
  inc(labels: Readonly<Record<L, string>>, by = 1): void {
    if (this.type === 'counter' && !(by >= 0)) throw new Error(`counter ${this.name} cannot go down`);
    const s = this.slot(labels);
    if (s) s.value += by;
  }

  /** Set the series of `labels`: a gauge, or a counter mirrored from a count kept elsewhere (the supervisor's). */
  set(labels: Readonly<Record<L, string>>, value: number): void {
    const s = this.slot(labels);
    if (s) s.value = value;
  }

  /** Current value of a series (undefined when it does not exist). */
  get(labels: Readonly<Record<L, string>>): number | undefined {
    return this.series.get(this.key(labels))?.value;
  }

  /** Forget every series (a gauge recomputed at each scrape). */
  clear(): void {
    this.series.clear();
  }

  /** The family as 0.0.4 text: HELP, TYPE, then its samples sorted by label values. */
  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    const sorted = [...this.series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [, s] of sorted) {
      const labels = this.labelNames.map((n, i) => `${n}="${escapeLabelValue(s.values[i]!)}"`).join(',');
      lines.push(`${this.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
    return lines.join('\n') + '\n';
  }

  private key(labels: Readonly<Record<L, string>>): string {
    return JSON.stringify(this.labelNames.map((n) => labels[n]));
  }

  private slot(labels: Readonly<Record<L, string>>): Series | undefined {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) {
        this.onDropped();
        return undefined;
      }
      const values = this.labelNames.map((n) => {
        const v = labels[n];
        if (typeof v !== 'string') throw new Error(`${this.name}: label "${n}" missing`);
        return v;
      });
      s = { values, value: 0 };
      this.series.set(key, s);
    }
    return s;
  }
}

/** The families of one daemon, rendered in registration order; `collect` hooks run before each render. */
export class Registry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: (() => Promise<void> | void)[] = [];
  private readonly dropped: Family<never>;

  constructor() {
    this.dropped = this.counter('edgeward_metrics_series_dropped_total', `Increments dropped because a family already had ${MAX_SERIES} label sets.`, []);
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Family<L> {
    return this.add(new Family(name, help, 'counter', labelNames, () => this.dropped.inc({})));
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Family<L> {
    return this.add(new Family(name, help, 'gauge', labelNames, () => this.dropped.inc({})));
  }

  /** Run `fn` before each render (gauges computed from the current state). */
  collect(fn: () => Promise<void> | void): void {
    this.collectors.push(fn);
  }

  /** Every family as one 0.0.4 text document. */
  async render(): Promise<string> {
    for (const c of this.collectors) await c();
    return [...this.families.values()].map((f) => f.render()).join('');
  }

  private add<L extends string>(f: Family<L>): Family<L> {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} registered twice`);
    this.families.set(f.name, f as unknown as Family);
    return f;
  }
}
