/**
 * `edgeward:monitor/findings`: an extension's findings, checked against their caps and kept by the
 * findings store with the submitting module as their source (from the instance, never an argument).
 */
import type { InstanceContext } from '../../runtime/capabilities.js';
import type * as Wit from './generated/interfaces/edgeward-monitor-findings.js';
import { guestString, invalidArgument, limitExceeded, MonitorErrorPayload } from './errors.js';
import { SEVERITIES, type Finding } from './findings-store.js';
import type { MonitorHub } from './hub.js';

export const MAX_RULE_ID = 128;
export const MAX_SUMMARY = 1024;
export const MAX_EVIDENCE = 32;
export const MAX_EVIDENCE_KEY = 64;
export const MAX_EVIDENCE_VALUE = 1024;
export const MAX_TAGS = 16;
export const MAX_TAG = 64;
/** What one `submit` may carry at most, refused in the worker past it (the caps above, with room). */
export const MAX_SUBMIT_BYTES = MAX_RULE_ID + MAX_SUMMARY + MAX_EVIDENCE * (MAX_EVIDENCE_KEY + MAX_EVIDENCE_VALUE + 64) + MAX_TAGS * (MAX_TAG + 16) + 1024;

const RULE_ID = /^[A-Za-z0-9._:/-]{1,128}$/;
const MODULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;

/** The finding `v` as the store keeps it, or the WIT error saying which field is wrong. */
export function checkFinding(v: unknown, source: string): Omit<Finding, 'id' | 'time'> {
  const f = v as Partial<Wit.Finding> | null;
  if (!f || typeof f !== 'object') throw invalidArgument('finding: not a record');
  const ruleId = guestString(f.ruleId, 'rule-id', MAX_RULE_ID);
  if (!RULE_ID.test(ruleId)) throw invalidArgument('rule-id: letters, digits and . _ : / - only');
  if (!SEVERITIES.includes(f.severity as never)) throw invalidArgument('severity: unknown');
  const summary = guestString(f.summary, 'summary', MAX_SUMMARY);
  if (!NO_CONTROL.test(summary)) throw invalidArgument('summary: one line, no control characters');
  if (!Array.isArray(f.evidence) || !Array.isArray(f.tags)) throw invalidArgument('evidence and tags: lists');
  if (f.evidence.length > MAX_EVIDENCE) throw limitExceeded(`evidence: more than ${MAX_EVIDENCE} pairs`);
  if (f.tags.length > MAX_TAGS) throw limitExceeded(`tags: more than ${MAX_TAGS}`);
  const evidence = f.evidence.map((pair): [string, string] => {
    if (!Array.isArray(pair) || pair.length !== 2) throw invalidArgument('evidence: pairs of strings');
    return [guestString(pair[0], 'evidence key', MAX_EVIDENCE_KEY), guestString(pair[1], 'evidence value', MAX_EVIDENCE_VALUE)];
  });
  const tags = f.tags.map((t) => guestString(t, 'tag', MAX_TAG));
  const subject = f.subject === undefined ? undefined : guestString(f.subject, 'subject', 64);
  if (subject !== undefined && !MODULE_NAME.test(subject)) throw invalidArgument('subject: not a module name');
  return { source, ruleId, severity: f.severity as Finding['severity'], summary, evidence, tags, ...(subject !== undefined ? { subject } : {}) };
}

export function findingsFunctions(hub: MonitorHub, instance: Pick<InstanceContext, 'module' | 'log'>) {
  return {
    async submit(f: unknown): Promise<string> {
      const finding = checkFinding(f, instance.module);
      try {
        return await hub.findings.add(finding);
      } catch (err) {
        instance.log('warn', `finding ${finding.ruleId} could not be stored: ${(err as Error).message}`);
        throw new MonitorErrorPayload({ tag: 'unavailable' } satisfies Wit.FindingsError);
      }
    },
  };
}
