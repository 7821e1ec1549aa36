import {
  XenbusState,
  formatXenbusState,
  observeOnline,
  observeXenbusState,
  parseXenbusState,
  xenbusStateName,
} from '../../src/machines/xenbus/state';
import { parseOptionalFlag, parseUnsigned, quote } from '../../src/machines/parsed';
import { backendChanged, frontendChanged } from '../../src/machines/xenbus/device-events';

describe('parseXenbusState', () => {
  it.each([
    ['0', XenbusState.Unknown],
    ['1', XenbusState.Initialising],
    ['2', XenbusState.InitWait],
    ['3', XenbusState.Initialised],
    ['4', XenbusState.Connected],
    ['5', XenbusState.Closing],
    ['6', XenbusState.Closed],
    ['7', XenbusState.Reconfiguring],
    ['8', XenbusState.Reconfigured],
  ])('reads %s as %s', (text, state) => {
    expect(parseXenbusState(text)).toEqual({ ok: true, value: state });
  });

  it.each(['', '9', '-1', ' 4', '4 ', '4\n', 'four', '0x4', '99999999999'])('rejects %j naming the key', (text) => {
    const parsed = parseXenbusState(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error.key).toBe('state');
      expect(parsed.error.message).toContain('state');
    }
  });

  it('reports a missing key', () => {
    expect(parseXenbusState(undefined)).toEqual({ ok: false, error: { key: 'state', message: 'key state is missing' } });
  });

  it('round-trips through formatXenbusState', () => {
    for (let s = 0; s <= 8; s++) {
      expect(parseXenbusState(formatXenbusState(s as XenbusState))).toEqual({ ok: true, value: s });
    }
  });

  it('names states', () => {
    expect(xenbusStateName(XenbusState.InitWait)).toBe('InitWait');
    expect(xenbusStateName(XenbusState.Closed)).toBe('Closed');
  });
});

describe('observing watched nodes as QEMU does', () => {
  it('treats a missing or unreadable state as Unknown', () => {
    expect(observeXenbusState(undefined)).toBe(XenbusState.Unknown);
    expect(observeXenbusState('garbage')).toBe(XenbusState.Unknown);
    expect(observeXenbusState('12')).toBe(XenbusState.Unknown);
    expect(observeXenbusState('5')).toBe(XenbusState.Closing);
  });

  it('treats online as true only for a non-zero number', () => {
    expect(observeOnline('1')).toBe(true);
    expect(observeOnline('2')).toBe(true);
    expect(observeOnline('0')).toBe(false);
    expect(observeOnline(undefined)).toBe(false);
    expect(observeOnline('yes')).toBe(false);
  });
});

describe('value parsing helpers', () => {
  it('bounds unsigned values and names the key', () => {
    expect(parseUnsigned({ n: '4294967295' }, 'n')).toEqual({ ok: true, value: 4294967295 });
    const over = parseUnsigned({ n: '4294967296' }, 'n');
    expect(over.ok).toBe(false);
    const bad = parseUnsigned({ n: '12abc' }, 'n', undefined, 'frontend key');
    expect(bad).toEqual({ ok: false, error: { key: 'n', message: "frontend key n is not an unsigned decimal: '12abc'" } });
  });

  it('reads optional flags with a default', () => {
    expect(parseOptionalFlag({}, 'f', true)).toEqual({ ok: true, value: true });
    expect(parseOptionalFlag({ f: '0' }, 'f', true)).toEqual({ ok: true, value: false });
    expect(parseOptionalFlag({ f: 'x' }, 'f', true).ok).toBe(false);
  });

  it('quotes hostile values bounded and printable', () => {
    const quoted = quote(`a\nb${'z'.repeat(100)}`);
    expect(quoted.startsWith("'a?b")).toBe(true);
    expect(quoted.length).toBeLessThan(50);
    expect(quoted).not.toContain('\n');
  });
});

describe('observation events from raw xenstore text', () => {
  it('builds backend.changed and frontend.changed as a watch handler would', () => {
    
    expect(backendChanged('5', '0')).toEqual({ type: 'backend.changed', state: XenbusState.Closing, online: false });
    expect(backendChanged(undefined, undefined)).toEqual({ type: 'backend.changed', state: XenbusState.Unknown, online: false });
    expect(frontendChanged('3', { 'ring-ref': '8' })).toEqual({ type: 'frontend.changed', state: XenbusState.Initialised, keys: { 'ring-ref': '8' } });
  });
});
