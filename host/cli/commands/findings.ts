/**
 * `edgeward findings [--json] [--since ID] [--limit N]`: what security extensions found
 * (`edgeward:monitor/findings`), and the modules they quarantined, through the management API.
 */
import type { Command } from 'commander';
import type { MgmtClient } from '../client.js';
import { action, table } from '../output.js';
import type { Finding, Quarantine } from '../../capabilities/monitor/findings-store.js';

export interface FindingsAnswer {
  findings: Finding[];
  dropped: number;
  quarantined: Record<string, Quarantine>;
}

/** The findings as a table (newest last), then the quarantined modules and how many findings were dropped. */
export function renderFindings(res: FindingsAnswer): string {
  const lines: string[] = [];
  if (res.findings.length === 0) lines.push('no findings');
  else {
    const rows = res.findings.map((f) => [f.id, f.time, f.severity, f.source, f.ruleId, f.subject ?? '-', oneLine(f.summary)]);
    lines.push(table([['ID', 'TIME', 'SEVERITY', 'SOURCE', 'RULE', 'SUBJECT', 'SUMMARY'], ...rows]));
  }
  for (const [m, q] of Object.entries(res.quarantined)) lines.push(`quarantined: ${m} by ${q.by} at ${q.time}: ${oneLine(q.reason)}`);
  if (res.dropped) lines.push(`(${res.dropped} older finding(s) dropped to stay within the store's bound)`);
  return lines.join('\n') + '\n';
}

/** A guest's text on one terminal line: control characters shown as `?` (no escape sequences reach the terminal). */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function registerFindingsCommand(program: Command, getClient: () => Promise<MgmtClient>): void {
  program
    .command('findings')
    .description('findings submitted by security extensions (edgeward:monitor/findings), and quarantined modules')
    .option('--json', 'print the API answer as JSON')
    .option('--since <id>', 'only findings after this id')
    .option('--limit <n>', 'only the last N findings')
    .action(
      action(async (opts: { json?: boolean; since?: string; limit?: string }) => {
        const q = new URLSearchParams({ ...(opts.since ? { since: opts.since } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }).toString();
        const res = await (await getClient()).request<FindingsAnswer>('GET', `/findings${q ? `?${q}` : ''}`);
        process.stdout.write(opts.json ? `${JSON.stringify(res, null, 2)}\n` : renderFindings(res));
      }),
    );
}
