import {
  chooseRingPageOrder,
  connectKeyNames,
  frontendRingKeys,
  parseConnectParams,
  sameConnectParams,
  type ConnectParams,
} from '../../src/machines/block/connect-params';

const limits = { maxRingPageOrder: 4 };

function errorOf(keys: Record<string, string>) {
  const parsed = parseConnectParams(keys, limits);
  if (parsed.ok) throw new Error(`expected an error, got ${JSON.stringify(parsed.value)}`);
  return parsed.error;
}

describe('parseConnectParams (xen_block_connect)', () => {
  it('reads a single-page ring from ring-ref', () => {
    expect(parseConnectParams({ 'ring-ref': '8', 'event-channel': '15', protocol: 'x86_64-abi' }, limits)).toEqual({
      ok: true,
      value: { ringPageOrder: 0, ringRefs: [8], eventChannel: 15, protocol: 'x86_64-abi', persistent: false },
    });
  });

  it('reads ring-ref0..N-1 when ring-page-order is present', () => {
    const keys = {
      'ring-page-order': '2',
      'ring-ref0': '10',
      'ring-ref1': '11',
      'ring-ref2': '12',
      'ring-ref3': '13',
      'ring-ref': '99',
      'event-channel': '7',
      protocol: 'x86_32-abi',
      'feature-persistent': '1',
    };
    expect(parseConnectParams(keys, limits)).toEqual({
      ok: true,
      value: { ringPageOrder: 2, ringRefs: [10, 11, 12, 13], eventChannel: 7, protocol: 'x86_32-abi', persistent: true },
    });
  });

  it('reads order 0 given explicitly as ring-ref0', () => {
    const parsed = parseConnectParams({ 'ring-page-order': '0', 'ring-ref0': '5', 'event-channel': '3' }, limits);
    expect(parsed.ok && parsed.value.ringRefs).toEqual([5]);
  });

  it('takes a missing protocol as the x86_32 layout, as Linux blkback on x86', () => {
    const parsed = parseConnectParams({ 'ring-ref': '8', 'event-channel': '15' }, limits);
    expect(parsed.ok && parsed.value.protocol).toBe('x86_32-abi');
  });

  it.each([
    [{ 'event-channel': '1' }, 'ring-ref', 'frontend key ring-ref is missing'],
    [{ 'ring-ref': 'x', 'event-channel': '1' }, 'ring-ref', "frontend key ring-ref is not an unsigned decimal: 'x'"],
    [{ 'ring-ref': '4294967296', 'event-channel': '1' }, 'ring-ref', 'out of range'],
    [{ 'ring-page-order': '5', 'event-channel': '1' }, 'ring-page-order', 'frontend key ring-page-order 5 is invalid (max 4)'],
    [{ 'ring-page-order': '-1', 'event-channel': '1' }, 'ring-page-order', 'not an unsigned decimal'],
    [
      { 'ring-page-order': '2', 'ring-ref0': '1', 'ring-ref1': '2', 'ring-ref2': '3', 'event-channel': '1' },
      'ring-ref3',
      'frontend key ring-ref3 is missing',
    ],
    [{ 'ring-ref': '8' }, 'event-channel', 'frontend key event-channel is missing'],
    [{ 'ring-ref': '8', 'event-channel': '1 ' }, 'event-channel', 'not an unsigned decimal'],
    [{ 'ring-ref': '8', 'event-channel': '1', protocol: 'arm-abi' }, 'protocol', "frontend key protocol is unknown: 'arm-abi'"],
    [{ 'ring-ref': '8', 'event-channel': '1', 'multi-queue-num-queues': '4' }, 'multi-queue-num-queues', '4 queues'],
    [{ 'ring-ref': '8', 'event-channel': '1', 'feature-persistent': 'on' }, 'feature-persistent', 'not an unsigned'],
  ])('reports %j as an error on %s', (keys, key, message) => {
    const error = errorOf(keys);
    expect(error.key).toBe(key);
    expect(error.message).toContain(message);
  });

  it('never reads beyond the limit whatever the settings say', () => {
    const keys: Record<string, string> = { 'ring-page-order': '12', 'event-channel': '1' };
    const parsed = parseConnectParams(keys, { maxRingPageOrder: 30 });
    expect(parsed.ok).toBe(false);
  });
});

describe('frontendRingKeys (talk_to_blkback) is the inverse of parseConnectParams', () => {
  const cases: ConnectParams[] = [
    { ringPageOrder: 0, ringRefs: [8], eventChannel: 15, protocol: 'x86_64-abi', persistent: false },
    { ringPageOrder: 1, ringRefs: [8, 9], eventChannel: 2, protocol: 'x86_32-abi', persistent: true },
    { ringPageOrder: 4, ringRefs: Array.from({ length: 16 }, (_, i) => 100 + i), eventChannel: 70, protocol: 'x86_64-abi', persistent: true },
  ];
  it.each(cases)('round-trips order %#', (params) => {
    const keys = frontendRingKeys(params);
    expect(parseConnectParams(keys, limits)).toEqual({ ok: true, value: params });
    expect(Object.keys(keys).every((k) => connectKeyNames(4).includes(k))).toBe(true);
  });

  it('writes ring-ref for one page and ring-page-order with ring-refN otherwise', () => {
    expect(frontendRingKeys(cases[0]!)).toHaveProperty('ring-ref', '8');
    expect(frontendRingKeys(cases[0]!)).not.toHaveProperty('ring-page-order');
    expect(frontendRingKeys(cases[1]!)).toMatchObject({ 'ring-page-order': '1', 'ring-ref0': '8', 'ring-ref1': '9' });
  });

  it('compares parameters by value', () => {
    expect(sameConnectParams(cases[1]!, { ...cases[1]!, ringRefs: [8, 9] })).toBe(true);
    expect(sameConnectParams(cases[1]!, { ...cases[1]!, ringRefs: [8, 10] })).toBe(false);
    expect(sameConnectParams(cases[1]!, { ...cases[1]!, eventChannel: 3 })).toBe(false);
  });

  it('chooses the smaller of the two ring limits, as blkfront', () => {
    expect(chooseRingPageOrder(4, 0)).toBe(0);
    expect(chooseRingPageOrder(2, 4)).toBe(2);
    expect(chooseRingPageOrder(0, 4)).toBe(0);
  });
});
