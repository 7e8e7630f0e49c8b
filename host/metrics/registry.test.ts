import { describe, expect, it } from 'vitest';
import { escapeHelp, escapeLabelValue, formatValue, MAX_SERIES, Registry } from './registry.js';
import { parseExposition, promtoolCheck, valueOf } from '../../test/helpers/prometheus.js';

describe('Prometheus 0.0.4 text', () => {
  it('escapes backslash, double quote and line feed in label values, and only those', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue('tab\there ünï {x}=,')).toBe('tab\there ünï {x}=,');
    // HELP escapes backslash and line feed; a quote stays.
    expect(escapeHelp('say "hi"\\\n')).toBe('say "hi"\\\\\\n');
  });

  it('renders label values that need escaping so that a strict reader (and promtool, when installed) gets them back', async () => {
    const r = new Registry();
    const c = r.counter('edgeward_test_total', 'A test counter with a backslash \\ and\na second line.', ['module', 'outcome']);
    const nasty = ['quote"inside', 'back\\slash', 'line\nfeed', '\\"\n', '}, x="y"', ''];
    nasty.forEach((v, i) => c.inc({ module: v, outcome: 'ok' }, i + 1));
    const text = await r.render();
    const parsed = parseExposition(text);
    nasty.forEach((v, i) => expect(valueOf(parsed, 'edgeward_test_total', { module: v })).toBe(i + 1));
    expect(parsed.get('edgeward_test_total')!.help).toBe('A test counter with a backslash \\ and\na second line.');
    expect(text).toContain('edgeward_test_total{module="quote\\"inside",outcome="ok"} 1\n');
    const promtool = promtoolCheck(text);
    if (promtool) expect(promtool, promtool.output).toEqual({ code: 0, output: '' });
  });

  it('the strict reader refuses an unescaped quote, a bad escape, a split family and a repeated series', () => {
    const head = '# HELP a_total x\n# TYPE a_total counter\n';
    expect(() => parseExposition(`${head}a_total{m="a"b"} 1\n`)).toThrow(/line 3/);
    expect(() => parseExposition(`${head}a_total{m="a\\tb"} 1\n`)).toThrow(/invalid escape/);
    expect(() => parseExposition(`${head}a_total 1\n# HELP b x\n# TYPE b gauge\nb 1\na_total{m="x"} 1\n`)).toThrow(/one group/);
    expect(() => parseExposition(`${head}a_total{m="x"} 1\na_total{m="x"} 2\n`)).toThrow(/same series/);
    expect(() => parseExposition('a_total 1\n')).toThrow(/without HELP and TYPE/);
    expect(() => parseExposition(`${head}a_total 1`)).toThrow(/line feed/);
  });

  it('writes NaN and infinities as Go reads them; a counter never goes down', () => {
    expect([NaN, Infinity, -Infinity, 0.5, 3].map(formatValue)).toEqual(['NaN', '+Inf', '-Inf', '0.5', '3']);
    const c = new Registry().counter('x_total', 'x', []);
    expect(() => c.inc({}, -1)).toThrow(/cannot go down/);
    expect(() => new Registry().counter('bad', 'x', [])).toThrow(/_total/);
    expect(() => new Registry().gauge('g', 'x', ['__reserved'])).toThrow(/invalid label/);
  });

  it(`keeps at most ${MAX_SERIES} label sets per family and counts what it dropped`, async () => {
    const r = new Registry();
    const c = r.counter('flood_total', 'x', ['module']);
    for (let i = 0; i < MAX_SERIES + 5; i++) c.inc({ module: `m${i}` });
    const parsed = parseExposition(await r.render());
    expect(parsed.get('flood_total')!.samples).toHaveLength(MAX_SERIES);
    expect(valueOf(parsed, 'edgeward_metrics_series_dropped_total')).toBe(5);
  });
});
