// The frontend's transport parameters (blkif.h "Request Transport Parameters"), read by the
// backend when the frontend is Initialised (xen_block_connect, blkback connect_ring), and
// written by a frontend (blkfront talk_to_blkback). Both directions live here.
import { fail, ok, parseOptionalFlag, parseOptionalUnsigned, parseUnsigned, quote, type Parsed, type XenstoreRecord } from '../parsed';

/** The ring ABI the frontend speaks (XEN_IO_PROTO_ABI_*). */
export type BlkifProtocol = 'x86_32-abi' | 'x86_64-abi';

export const BLKIF_PROTOCOLS: readonly BlkifProtocol[] = ['x86_32-abi', 'x86_64-abi'];

/**
 * A frontend that writes no `protocol` key: Linux blkback on x86 takes the x86_32 layout
 * (BLKIF_PROTOCOL_DEFAULT); such frontends predate the key and were 32-bit.
 */
export const DEFAULT_BLKIF_PROTOCOL: BlkifProtocol = 'x86_32-abi';

/** Keys above this order are never read; bounds the ring-ref%u loop whatever the settings. */
export const RING_PAGE_ORDER_LIMIT = 8;

export interface ConnectParams {
  /** log2 of the ring's page count; 0 for a single page. */
  readonly ringPageOrder: number;
  /** One grant reference per ring page, in page order. */
  readonly ringRefs: readonly number[];
  /** The frontend's (remote) event-channel port. */
  readonly eventChannel: number;
  readonly protocol: BlkifProtocol;
  /** The frontend reuses grants (feature-persistent). */
  readonly persistent: boolean;
}

export interface ConnectLimits {
  readonly maxRingPageOrder: number;
}

const FE = 'frontend key';

/**
 * Reads ring-page-order / ring-ref / ring-ref%u, event-channel, protocol (and checks
 * multi-queue-num-queues, which this backend does not offer). Errors name the key at fault.
 */
export function parseConnectParams(keys: XenstoreRecord, limits: ConnectLimits): Parsed<ConnectParams> {
  const max = Math.min(limits.maxRingPageOrder, RING_PAGE_ORDER_LIMIT);
  let ringPageOrder = 0;
  const ringRefs: number[] = [];
  if (keys['ring-page-order'] === undefined) {
    const ref = parseUnsigned(keys, 'ring-ref', undefined, FE);
    if (!ref.ok) return ref;
    ringRefs.push(ref.value);
  } else {
    const order = parseUnsigned(keys, 'ring-page-order', undefined, FE);
    if (!order.ok) return order;
    if (order.value > max) {
      return fail('ring-page-order', `${FE} ring-page-order ${order.value} is invalid (max ${max})`);
    }
    ringPageOrder = order.value;
    for (let i = 0; i < 1 << ringPageOrder; i++) {
      const ref = parseUnsigned(keys, `ring-ref${i}`, undefined, FE);
      if (!ref.ok) return ref;
      ringRefs.push(ref.value);
    }
  }
  const eventChannel = parseUnsigned(keys, 'event-channel', undefined, FE);
  if (!eventChannel.ok) return eventChannel;
  const protocolText = keys['protocol'];
  let protocol = DEFAULT_BLKIF_PROTOCOL;
  if (protocolText !== undefined) {
    if (!(BLKIF_PROTOCOLS as readonly string[]).includes(protocolText)) {
      return fail('protocol', `${FE} protocol is unknown: ${quote(protocolText)}`);
    }
    protocol = protocolText as BlkifProtocol;
  }
  const queues = parseOptionalUnsigned(keys, 'multi-queue-num-queues', 1, undefined, FE);
  if (!queues.ok) return queues;
  if (queues.value !== 1) {
    return fail('multi-queue-num-queues', `${FE} multi-queue-num-queues asks for ${queues.value} queues; 1 is supported`);
  }
  const persistent = parseOptionalFlag(keys, 'feature-persistent', false, FE);
  if (!persistent.ok) return persistent;
  return ok({ ringPageOrder, ringRefs, eventChannel: eventChannel.value, protocol, persistent: persistent.value });
}

/** The frontend keys a backend reads to connect (what the effects layer reads on a frontend watch). */
export function connectKeyNames(maxRingPageOrder: number): string[] {
  const max = Math.min(maxRingPageOrder, RING_PAGE_ORDER_LIMIT);
  const names = ['ring-page-order', 'ring-ref', 'event-channel', 'protocol', 'multi-queue-num-queues', 'feature-persistent'];
  for (let i = 0; i < 1 << max; i++) names.push(`ring-ref${i}`);
  return names;
}

/** What a frontend publishes for its ring (talk_to_blkback): the inverse of parseConnectParams. */
export function frontendRingKeys(params: ConnectParams): Record<string, string> {
  const keys: Record<string, string> = {};
  if (params.ringRefs.length === 1 && params.ringPageOrder === 0) {
    keys['ring-ref'] = String(params.ringRefs[0]);
  } else {
    keys['ring-page-order'] = String(params.ringPageOrder);
    params.ringRefs.forEach((ref, i) => {
      keys[`ring-ref${i}`] = String(ref);
    });
  }
  keys['event-channel'] = String(params.eventChannel);
  keys['protocol'] = params.protocol;
  keys['feature-persistent'] = params.persistent ? '1' : '0';
  return keys;
}

/** blkfront: the ring order is the smaller of the backend's max-ring-page-order and its own limit. */
export function chooseRingPageOrder(backendMax: number, frontendMax: number): number {
  return Math.max(0, Math.min(backendMax, frontendMax));
}

export function sameConnectParams(a: ConnectParams, b: ConnectParams): boolean {
  return (
    a.ringPageOrder === b.ringPageOrder &&
    a.eventChannel === b.eventChannel &&
    a.protocol === b.protocol &&
    a.persistent === b.persistent &&
    a.ringRefs.length === b.ringRefs.length &&
    a.ringRefs.every((ref, i) => ref === b.ringRefs[i])
  );
}
