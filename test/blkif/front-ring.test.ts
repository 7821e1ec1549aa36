import {
  BackRing,
  BLKIF_OP_READ,
  BlkifRequestCopy,
  BlkifResponseCopy,
  FrontRing,
  REQ_EVENT,
  REQ_PROD,
  RSP_EVENT,
  RSP_PROD,
  X86_64_ABI,
} from '../../src/blkif';
import { header, ringMemory } from './support/ring-memory';

function read(id: number): BlkifRequestCopy {
  const r = new BlkifRequestCopy();
  r.operation = BLKIF_OP_READ;
  r.nrSegments = 1;
  r.segCount = 1;
  r.idLo = id;
  return r;
}

describe('FrontRing', () => {
  it('initialises the shared header as SHARED_RING_INIT does', () => {
    const mem = ringMemory(1).fill(0xff);
    FrontRing.init(mem, X86_64_ABI, 1);
    const h = header(mem);
    expect([h[REQ_PROD], h[REQ_EVENT], h[RSP_PROD], h[RSP_EVENT]]).toEqual([0, 1, 0, 1]);
    expect(Array.from(h.subarray(4))).toEqual(new Array(12).fill(0));
  });

  it('counts free slots, refuses to overfill, and frees slots as responses are consumed', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    for (let i = 0; i < 32; i++) front.writeRequest(read(i));
    expect(front.freeRequests()).toBe(0);
    expect(() => front.writeRequest(read(99))).toThrow(/full/);
    front.pushRequests();
    const c = new BlkifRequestCopy();
    back.consumeRequest(c);
    back.writeResponse(0, c.idLo, 0, c.operation, 0);
    back.publishResponses(1);
    expect(front.freeRequests()).toBe(0); // not consumed by the front yet
    front.consumeResponse(new BlkifResponseCopy());
    expect(front.freeRequests()).toBe(1);
  });

  it('stops on a rsp_prod beyond the requests it pushed', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    front.writeRequest(read(1));
    front.writeRequest(read(2));
    front.pushRequests();
    front.writeRequest(read(3)); // written, not pushed: the backend cannot answer it
    header(mem)[RSP_PROD] = 3;
    expect(front.pendingResponses()).toBe(0);
    expect(front.fault?.reason).toBe('response-overflow');
    expect(front.consumeResponse(new BlkifResponseCopy())).toBe(false);
    expect(front.finalCheckForResponses()).toBe(false);
  });

  it('push without new requests neither writes nor notifies', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    expect(front.pushRequests()).toBe(false);
    front.writeRequest(read(1));
    expect(front.pushRequests()).toBe(true);
    expect(front.pushRequests()).toBe(false);
    expect(header(mem)[REQ_PROD]).toBe(1);
  });
});
