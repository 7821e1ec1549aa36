// Equality of recorded and replayed values (JSON data: key order does not matter, array order
// does) and their one-line rendering in divergence reports.
import type { Intent } from '../effects/intents';

export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** Intent lists by owner; owners with nothing are the same as absent ones. */
export function sameIntentsByOwner(a: Readonly<Record<string, readonly Intent[]>>, b: Readonly<Record<string, readonly Intent[]>>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameJson(a[k] ?? [], b[k] ?? [])) return false;
  return true;
}

export function formatIntent(i: Intent): string {
  switch (i.op) {
    case 'write':
      return `write ${i.path}=${JSON.stringify(i.value)}${i.unlessExists ? ` unless ${i.unlessExists} exists` : ''}`;
    case 'rewrite':
    case 'rm':
      return `${i.op} ${i.path}`;
    case 'map-ring':
    case 'unmap-ring':
      return `${i.op} d${i.domid} refs ${i.refs.join(',')}`;
    case 'bind':
    case 'unbind':
      return `${i.op} d${i.domid} port ${i.port}`;
    case 'spawn':
    case 'retire':
      return `${i.op} ${i.device}`;
    case 'disk':
      return `disk ${i.sectors} sectors of ${i.sectorSize}`;
  }
}

export function formatIntents(list: readonly Intent[]): string {
  return list.length === 0 ? '(none)' : list.map(formatIntent).join('; ');
}

/** A state value on one line: "active(lifecycle=initWait, stateWriter=idle, ...)". */
export function formatState(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const parts = Object.entries(value as Record<string, unknown>).map(([k, v]) => (typeof v === 'string' ? `${k}.${v}` : `${k}.${formatState(v)}`));
  return parts.length === 1 ? parts[0] : `{${parts.join(', ')}}`;
}
