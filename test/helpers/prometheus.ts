/**
 * A strict reader of the Prometheus text exposition format 0.0.4, for tests of what Edgeward serves:
 * anything the format does not allow throws, naming the line, and so do a few things it allows but a
 * correct exporter never writes (a sample without HELP and TYPE before it, a family split in two groups,
 * the same series twice, a blank line, a trailing comma in a label set, a negative counter). When the
 * Debian `prometheus` package's `promtool` is installed, `promtoolCheck` runs its linter as a second,
 * independent reader.
 */
import { spawnSync } from 'node:child_process';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}
export interface MetricFamily {
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Parse a whole exposition; throws `line N: why` on the first problem. */
export function parseExposition(text: string): Map<string, MetricFamily> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map<string, MetricFamily>();
  const partial = new Map<string, { help?: string; type?: MetricFamily['type'] }>();
  const seen = new Set<string>();
  let current: string | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line === '') fail('blank line');
    if (line.startsWith('#')) return void comment(line, partial, families, fail);
    const { name, labels, value } = sample(line, fail);
    const fam = families.get(name) ?? declared(name, partial, families, fail);
    if (current !== name && fam.samples.length > 0) fail(`samples of ${name} are not in one group`);
    current = name;
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) fail('the same series twice');
    seen.add(key);
    if (fam.type === 'counter' && !(value >= 0)) fail('a counter must be a non-negative number');
    fam.samples.push({ labels, value });
  });
  return families;
}

function comment(line: string, partial: Map<string, { help?: string; type?: MetricFamily['type'] }>, families: Map<string, MetricFamily>, fail: (why: string) => never): void {
  const m = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line) ?? (/^# (HELP|TYPE)\b/.test(line) ? fail('malformed HELP/TYPE line') : undefined);
  if (!m) return; // a plain comment
  const [, what, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string];
  if (families.has(name)) fail(`${what} after the samples of ${name}`);
  const p = partial.get(name) ?? {};
  partial.set(name, p);
  if (what === 'HELP') {
    if (p.help !== undefined) fail(`second HELP for ${name}`);
    p.help = unescape(rest, false, fail);
  } else {
    if (p.type !== undefined) fail(`second TYPE for ${name}`);
    if (!TYPES.has(rest)) fail(`unknown type "${rest}"`);
    p.type = rest as MetricFamily['type'];
  }
}

function declared(name: string, partial: Map<string, { help?: string; type?: MetricFamily['type'] }>, families: Map<string, MetricFamily>, fail: (why: string) => never): MetricFamily {
  const p = partial.get(name);
  if (p?.help === undefined || p.type === undefined) fail(`sample of ${name} without HELP and TYPE before it`);
  const fam: MetricFamily = { help: p!.help!, type: p!.type!, samples: [] };
  families.set(name, fam);
  return fam;
}

function sample(line: string, fail: (why: string) => never): { name: string; labels: Record<string, string>; value: number } {
  const m = new RegExp(`^(${NAME})(\\{.*\\})? (\\S+)( -?\\d+)?$`).exec(line) ?? fail('not a sample line');
  const [, name, set, raw] = m;
  const labels: Record<string, string> = {};
  if (set !== undefined) {
    let rest = set.slice(1, -1);
    if (rest === '') fail('empty label braces');
    const pair = new RegExp(`^(${LABEL})="((?:[^"\\\\\\n]|\\\\.)*)"(,|$)`);
    while (rest !== '') {
      const p = pair.exec(rest) ?? fail(`malformed label set at ${JSON.stringify(rest)}`);
      if (p[1]!.startsWith('__')) fail(`reserved label name ${p[1]}`);
      if (p[1]! in labels) fail(`label ${p[1]} twice`);
      labels[p[1]!] = unescape(p[2]!, true, fail);
      rest = rest.slice(p[0].length);
      if (p[3] === ',' && rest === '') fail('trailing comma in the label set');
    }
  }
  return { name: name!, labels, value: float(raw!, fail) };
}

/** 0.0.4 escapes: `\\` and `\n` everywhere, `\"` in label values; nothing else. */
function unescape(s: string, labelValue: boolean, fail: (why: string) => never): string {
  return s.replace(/\\(.?)/g, (_, c: string) => (c === '\\' ? '\\' : c === 'n' ? '\n' : c === '"' && labelValue ? '"' : fail(`invalid escape \\${c}`)));
}

function float(s: string, fail: (why: string) => never): number {
  if (s === 'NaN') return NaN;
  if (/^[+-]?Inf$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) fail(`"${s}" is not a float`);
  return Number(s);
}

/** The value of the one sample of `name` whose labels include `labels` (undefined if none). */
export function valueOf(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = families.get(name)?.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? [];
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** `promtool check metrics` on `text`: undefined when promtool is not installed, else its exit code and output. */
export function promtoolCheck(text: string): { code: number; output: string } | undefined {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
