// Results of parsing xenstore text: a typed value or an error naming the key. The machines
// layer never throws on bad input; every parse returns one of these.

export interface ValueError {
  /** The xenstore key (or option) at fault, e.g. "ring-ref3". */
  readonly key: string;
  /** One line, names the key. */
  readonly message: string;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ValueError };

export function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

export function fail<T = never>(key: string, message: string): Parsed<T> {
  return { ok: false, error: { key, message } };
}

/** A read-only view of a xenstore directory: key -> raw text. Absent keys are missing. */
export type XenstoreRecord = Readonly<Record<string, string>>;

const MAX_QUOTED = 40;

/** Quotes a guest-supplied value for an error message: bounded length, printable only. */
export function quote(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  const cut = printable.length > MAX_QUOTED ? `${printable.slice(0, MAX_QUOTED)}...` : printable;
  return `'${cut}'`;
}

const DECIMAL = /^[0-9]+$/;
const U32_MAX = 0xffff_ffff;

/** Decimal text to an integer in [0, max]; no sign, no spaces, no trailing text. */
export function parseUnsigned(
  record: XenstoreRecord,
  key: string,
  max: number = U32_MAX,
  where = 'key',
): Parsed<number> {
  const text = record[key];
  if (text === undefined) return fail(key, `${where} ${key} is missing`);
  return parseUnsignedText(text, key, max, where);
}

export function parseUnsignedText(text: string, key: string, max: number = U32_MAX, where = 'key'): Parsed<number> {
  // Length bound first: a 20-digit string is already beyond any limit used here.
  if (text.length === 0 || text.length > 20 || !DECIMAL.test(text)) {
    return fail(key, `${where} ${key} is not an unsigned decimal: ${quote(text)}`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value > max) {
    return fail(key, `${where} ${key} is out of range (max ${max}): ${quote(text)}`);
  }
  return ok(value);
}

/** Absent -> fallback; present -> must parse. */
export function parseOptionalUnsigned(
  record: XenstoreRecord,
  key: string,
  fallback: number,
  max: number = U32_MAX,
  where = 'key',
): Parsed<number> {
  return record[key] === undefined ? ok(fallback) : parseUnsigned(record, key, max, where);
}

/** Xen boolean nodes: "0"/"1" (any unsigned; non-zero is true). Absent -> fallback. */
export function parseOptionalFlag(record: XenstoreRecord, key: string, fallback: boolean, where = 'key'): Parsed<boolean> {
  if (record[key] === undefined) return ok(fallback);
  const n = parseUnsigned(record, key, U32_MAX, where);
  return n.ok ? ok(n.value !== 0) : n;
}
