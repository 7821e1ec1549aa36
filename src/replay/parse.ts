// Reading a session file: pure, line by line, every field checked, errors naming the line.
import { INTENT_OPS, type Intent } from '../effects/intents';
import {
  type LocatedRecord,
  type MachineName,
  MACHINES,
  PROCESS_ROLES,
  RECORD_KINDS,
  type RecordKind,
  SESSION_FORMAT,
  SESSION_VERSION,
  type SessionHeader,
} from './format';

export class SessionFormatError extends Error {
  constructor(
    /** 1-based line number in the file. */
    readonly line: number,
    readonly detail: string,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'SessionFormatError';
  }
}

export interface ParsedSession {
  readonly header: SessionHeader;
  readonly records: LocatedRecord[];
  /** The last line was cut off (a recording killed mid-write) and was left out. */
  readonly truncatedLine: number | null;
}

export interface ParseOptions {
  /** Leave out a torn last line instead of failing. */
  readonly allowTruncated?: boolean;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isNat = (v: unknown): v is number => isInt(v) && v >= 0;

export function parseSession(text: string, opts: ParseOptions = {}): ParsedSession {
  const lines = text.split('\n');
  // A file ending in a newline splits into a last empty string: not a line.
  const complete = lines[lines.length - 1] === '';
  if (complete) lines.pop();
  if (lines.length === 0) throw new SessionFormatError(1, 'empty file: not a xenblkd session');
  let truncatedLine: number | null = null;
  if (!complete) {
    const last = lines.length;
    if (!parsesAsObject(lines[last - 1])) {
      if (last === 1 || !opts.allowTruncated) {
        throw new SessionFormatError(last, 'truncated record: the recording was cut off in the middle of this line (--allow-truncated replays what precedes it)');
      }
      lines.pop();
      truncatedLine = last;
    }
  }
  const header = parseHeader(lines[0]);
  const records: LocatedRecord[] = [];
  let lastN = 0;
  for (let i = 1; i < lines.length; i++) {
    const record = parseRecord(lines[i], i + 1);
    if (record.n <= lastN) throw new SessionFormatError(i + 1, `record number ${record.n} does not follow ${lastN}`);
    lastN = record.n;
    records.push(record);
  }
  return { header, records, truncatedLine };
}

function parsesAsObject(line: string): boolean {
  try {
    return isObject(JSON.parse(line));
  } catch {
    return false;
  }
}

export function parseHeader(line: string): SessionHeader {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new SessionFormatError(1, 'not a xenblkd session file (the first line is not JSON)');
  }
  if (!isObject(value) || value.kind !== 'header' || value.format !== SESSION_FORMAT) {
    throw new SessionFormatError(1, `not a xenblkd session file (no ${SESSION_FORMAT} header)`);
  }
  if (!isInt(value.version) || value.version < 1) throw new SessionFormatError(1, 'header: version must be a positive integer');
  if (value.version > SESSION_VERSION) {
    throw new SessionFormatError(1, `session format version ${value.version} is newer than this xenblkd reads (${SESSION_VERSION})`);
  }
  if (typeof value.created !== 'string' || typeof value.source !== 'string') {
    throw new SessionFormatError(1, 'header: created and source must be strings');
  }
  if (value.description !== undefined && typeof value.description !== 'string') {
    throw new SessionFormatError(1, 'header: description must be a string');
  }
  return value as unknown as SessionHeader;
}

/** One record line (not the header); throws SessionFormatError naming `line`. */
export function parseRecord(text: string, line: number): LocatedRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SessionFormatError(line, `not JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw new SessionFormatError(line, 'a record must be a JSON object');
  const kind = value.kind;
  if (typeof kind !== 'string' || !(RECORD_KINDS as readonly string[]).includes(kind)) {
    throw new SessionFormatError(line, `unknown record kind ${JSON.stringify(kind)}`);
  }
  const check = new Checker(value, line, kind as RecordKind);
  check.field('n', (v) => isInt(v) && v >= 1, 'a positive integer');
  check.field('at', (v) => typeof v === 'number' && Number.isFinite(v), 'a number');
  switch (kind as RecordKind) {
    case 'start':
    case 'attach':
      check.process();
      check.field('pid', isNat, 'a process id');
      break;
    case 'detach':
      check.process();
      break;
    case 'stop':
      check.process();
      check.field('intents', (v) => isObject(v) && Object.values(v).every(isIntentList), 'an object of intent lists');
      break;
    case 'checkpoint':
      check.owner(true);
      check.field('stream', isStream, 'a stream name');
      check.field('version', isNat, 'a stream version');
      check.present('input');
      check.field('snapshot', isObject, 'an object');
      break;
    case 'created':
      check.owner(false);
      check.optional('stream', isStream, 'a stream name');
      check.present('input');
      check.present('state');
      check.intents();
      break;
    case 'recovered':
      check.owner(true);
      check.field('stream', isStream, 'a stream name');
      check.field('persisted', isPersisted, 'a persisted stream {version, snapshot, events}');
      check.present('state');
      check.intents();
      break;
    case 'input':
      check.owner(false);
      check.optional('stream', isStream, 'a stream name');
      // XState's own events (xstate.*) are never recorded: sent to a machine they would stop it.
      check.field('event', (v) => isObject(v) && typeof v.type === 'string' && v.type.length > 0 && !v.type.startsWith('xstate.'), 'an object with a type (not an xstate.* event)');
      check.optional('version', isNat, 'a stream version');
      check.present('from');
      check.present('to');
      check.intents();
      break;
    case 'retired':
      check.owner(false);
      check.intents();
      break;
  }
  return { ...(value as object), line } as LocatedRecord;
}

class Checker {
  constructor(
    private readonly value: Json,
    private readonly line: number,
    private readonly kind: RecordKind,
  ) {}

  fail(message: string): never {
    throw new SessionFormatError(this.line, `${this.kind} record: ${message}`);
  }

  field(name: string, ok: (v: unknown) => boolean, what: string): void {
    if (!(name in this.value)) this.fail(`field '${name}' is missing`);
    if (!ok(this.value[name])) this.fail(`field '${name}' must be ${what}`);
  }

  optional(name: string, ok: (v: unknown) => boolean, what: string): void {
    if (this.value[name] !== undefined && !ok(this.value[name])) this.fail(`field '${name}' must be ${what}`);
  }

  present(name: string): void {
    if (this.value[name] === undefined) this.fail(`field '${name}' is missing`);
  }

  process(): void {
    this.field('process', (v) => (PROCESS_ROLES as readonly unknown[]).includes(v), `one of ${PROCESS_ROLES.join(', ')}`);
  }

  owner(persistedOnly: boolean): void {
    const machines = Object.keys(MACHINES).filter((m) => !persistedOnly || m !== 'blkfront');
    this.field('machine', (v) => machines.includes(v as string), `one of ${machines.join(', ')}`);
    const machine = this.value.machine as MachineName;
    if (machine === 'bus') {
      if (this.value.device !== undefined) this.fail(`the bus has no 'device'`);
    } else {
      this.field('device', (v) => typeof v === 'string' && /^[0-9]+\/[0-9]+$/.test(v), 'a device key like "1/51712"');
    }
  }

  intents(): void {
    this.field('intents', isIntentList, 'a list of intents');
  }
}

const isStream = (v: unknown): boolean => typeof v === 'string' && v.length > 0;

function isPersisted(v: unknown): boolean {
  if (!isObject(v) || !isNat(v.version) || !Array.isArray(v.events)) return false;
  if (v.snapshot !== null && !(isObject(v.snapshot) && isNat(v.snapshot.version) && isObject(v.snapshot.state))) return false;
  return v.events.every((e) => isObject(e) && isNat(e.version) && typeof e.type === 'string' && typeof e.at === 'number');
}

function isIntentList(v: unknown): v is Intent[] {
  return Array.isArray(v) && v.every(isIntent);
}

function isIntent(v: unknown): boolean {
  if (!isObject(v) || !(INTENT_OPS as readonly unknown[]).includes(v.op)) return false;
  switch (v.op as Intent['op']) {
    case 'write':
      return typeof v.path === 'string' && typeof v.value === 'string' && (v.unlessExists === undefined || typeof v.unlessExists === 'string');
    case 'rewrite':
    case 'rm':
      return typeof v.path === 'string';
    case 'map-ring':
    case 'unmap-ring':
      return isNat(v.domid) && Array.isArray(v.refs) && v.refs.every(isNat);
    case 'bind':
    case 'unbind':
      return isNat(v.domid) && isNat(v.port);
    case 'spawn':
    case 'retire':
      return typeof v.device === 'string';
    case 'disk':
      return isNat(v.sectors) && isNat(v.sectorSize);
  }
}
