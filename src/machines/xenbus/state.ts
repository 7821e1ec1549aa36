// xenbus states (xen/include/public/io/xenbus.h), written to xenstore as decimal text.
import { fail, ok, quote, type Parsed } from '../parsed';

export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;

export type XenbusState = (typeof XenbusState)[keyof typeof XenbusState];

const NAMES: readonly string[] = [
  'Unknown',
  'Initialising',
  'InitWait',
  'Initialised',
  'Connected',
  'Closing',
  'Closed',
  'Reconfiguring',
  'Reconfigured',
];

export function xenbusStateName(state: XenbusState): string {
  return NAMES[state] ?? `Invalid(${state})`;
}

export function isXenbusState(n: number): n is XenbusState {
  return Number.isInteger(n) && n >= 0 && n <= 8;
}

/** '4' -> Connected. Missing, non-decimal or out-of-range text is an error naming the key. */
export function parseXenbusState(text: string | undefined, key = 'state'): Parsed<XenbusState> {
  if (text === undefined) return fail(key, `key ${key} is missing`);
  if (!/^[0-9]{1,10}$/.test(text)) return fail(key, `key ${key} is not a xenbus state: ${quote(text)}`);
  const n = Number(text);
  if (!isXenbusState(n)) return fail(key, `key ${key} is not a xenbus state: ${quote(text)}`);
  return ok(n);
}

/**
 * What a watcher makes of a `state` node, as QEMU does: a missing or unreadable value is
 * Unknown. Used to turn a watch firing into an observation event.
 */
export function observeXenbusState(text: string | undefined): XenbusState {
  const parsed = parseXenbusState(text);
  return parsed.ok ? parsed.value : XenbusState.Unknown;
}

/** The `online` node: a non-zero unsigned is true; missing or unreadable is false (QEMU). */
export function observeOnline(text: string | undefined): boolean {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return false;
  return Number(text) !== 0;
}

export function formatXenbusState(state: XenbusState): string {
  return String(state);
}
