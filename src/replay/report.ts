// How a replay's result reads: one summary line, or the first divergence with what was expected
// and what happened; and the session file written back with updated expectations.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Intent } from '../effects/intents';
import { formatIntents, formatState } from './compare';
import type { IntentsByOwner, LocatedRecord, SessionHeader } from './format';
import type { Divergence, Outcome, ReplayResult } from './replayer';

export function summaryLine(file: string, r: ReplayResult): string {
  const machines = Object.entries(r.byMachine)
    .filter(([, n]) => n > 0)
    .map(([m, n]) => `${m} ${n}`)
    .join(', ');
  const lifecycle = [`${r.starts} start(s)`, r.crashes > 0 && `${r.crashes} crash(es)`, r.recoveries > 0 && `${r.recoveries} recovery(ies)`].filter(Boolean).join(', ');
  const verdict = r.divergences === 0 ? 'identical' : `${r.divergences} divergence(s)`;
  return `${path.basename(file)}: ${r.inputs} events replayed (${machines || 'none'}), ${r.records} records, ${lifecycle}: ${verdict}`;
}

function intentsText(i: Outcome['intents']): string {
  if (i === undefined) return '';
  if (Array.isArray(i)) return formatIntents(i as readonly Intent[]);
  const byOwner = i as IntentsByOwner;
  const owners = Object.keys(byOwner).filter((o) => byOwner[o].length > 0);
  return owners.length === 0 ? '(none)' : owners.map((o) => `${o}: ${formatIntents(byOwner[o])}`).join(' | ');
}

export function divergenceLines(d: Divergence): string[] {
  const what = [d.owner, d.event].filter(Boolean).join(' ');
  const lines = [`first divergence at event ${d.n} (line ${d.line}, ${d.kind}${what ? ` ${what}` : ''}): ${d.differs.join(', ')} differ${d.differs.length === 1 ? 's' : ''}`];
  const row = (label: string, e: string, a: string) => {
    lines.push(`  expected ${label}: ${e}`);
    lines.push(`  actual ${label}:   ${a}`);
  };
  if (d.expected.problem !== undefined || d.actual.problem !== undefined) row('', d.expected.problem ?? '-', d.actual.problem ?? '-');
  if (d.differs.includes('from')) row('from', formatState(d.expected.from), formatState(d.actual.from));
  if (d.expected.state !== undefined || d.actual.state !== undefined) row('state', formatState(d.expected.state), formatState(d.actual.state));
  if (d.differs.includes('version')) row('version', String(d.expected.version), String(d.actual.version));
  if (d.expected.intents !== undefined || d.actual.intents !== undefined) row('writes', intentsText(d.expected.intents), intentsText(d.actual.intents));
  return lines.map((l) => l.replace('expected : ', 'expected: ').replace('actual :   ', 'actual:   '));
}

/** Writes a session back (atomically: a temporary file renamed over it). */
export function writeSession(file: string, header: SessionHeader, records: readonly LocatedRecord[]): void {
  const lines = [JSON.stringify(header)];
  for (const r of records) {
    const { line: _line, ...rest } = r;
    lines.push(JSON.stringify(rest));
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${lines.join('\n')}\n`);
  fs.renameSync(tmp, file);
}
