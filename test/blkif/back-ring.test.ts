import {
  BackRing,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_RSP_OKAY,
  BlkifRequestCopy,
  BlkifResponseCopy,
  FrontRing,
  REQ_EVENT,
  REQ_PROD,
  RSP_EVENT,
  RSP_PROD,
  unpublishedTail,
  X86_32_ABI,
  X86_64_ABI,
} from '../../src/blkif';
import { header, headerAt, ringMemory } from './support/ring-memory';

function request(id: number, op = BLKIF_OP_READ): BlkifRequestCopy {
  const r = new BlkifRequestCopy();
  r.operation = op;
  r.nrSegments = 1;
  r.segCount = 1;
  r.idLo = id;
  r.segGref[0] = 100 + id;
  r.segLast[0] = 7;
  return r;
}

describe('BackRing', () => {
  it('consumes what the front ring pushed, once, in order', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    expect(back.entries).toBe(32);
    for (let i = 0; i < 5; i++) front.writeRequest(request(i));
    expect(back.pendingRequests()).toBe(0); // not pushed yet
    expect(front.pushRequests()).toBe(true); // req_event starts at 1
    const copy = new BlkifRequestCopy();
    const seen: number[] = [];
    while (back.consumeRequest(copy)) seen.push(copy.idLo);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(back.reqCons).toBe(5);
    expect(back.unanswered).toBe(5);
  });

  it('publishes responses in two steps and reports when to notify', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_32_ABI, 1);
    const back = BackRing.attach(mem, X86_32_ABI, 1);
    for (let i = 0; i < 3; i++) front.writeRequest(request(10 + i, BLKIF_OP_WRITE));
    front.pushRequests();
    const copy = new BlkifRequestCopy();
    while (back.consumeRequest(copy));
    // Written slots are invisible until published.
    back.writeResponse(0, 10, 0, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    back.writeResponse(1, 11, 0, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    expect(front.pendingResponses()).toBe(0);
    // rsp_event = 1 (front initialised): the first publication must notify.
    expect(back.publishResponses(2)).toBe(true);
    expect(header(mem)[RSP_PROD]).toBe(2);
    const rsp = new BlkifResponseCopy();
    expect(front.consumeResponse(rsp)).toBe(true);
    expect([rsp.idLo, rsp.operation, rsp.status]).toEqual([10, BLKIF_OP_WRITE, 0]);
    expect(front.consumeResponse(rsp)).toBe(true);
    expect(rsp.idLo).toBe(11);
    expect(front.consumeResponse(rsp)).toBe(false);
    // The front did not re-arm rsp_event (still 1): no notification for the next one.
    back.writeResponse(2, 12, 0, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    expect(back.publishResponses(1)).toBe(false);
    // After the front's final check re-arms it, the next publication notifies again.
    expect(front.finalCheckForResponses()).toBe(true); // response 12 is there
    front.consumeResponse(rsp);
    expect(front.finalCheckForResponses()).toBe(false);
    expect(header(mem)[RSP_EVENT]).toBe(4);
  });

  it('refuses to write a response slot it does not own', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    front.writeRequest(request(1));
    front.pushRequests();
    back.consumeRequest(new BlkifRequestCopy());
    expect(() => back.writeResponse(1, 0, 0, 0, 0)).toThrow(RangeError);
    expect(() => back.writeResponse(0xffffffff, 0, 0, 0, 0)).toThrow(RangeError);
    expect(() => back.publishResponses(2)).toThrow(RangeError);
    back.writeResponse(0, 1, 0, 0, 0);
    expect(back.publishResponses(1)).toBe(true);
    expect(() => back.writeResponse(0, 0, 0, 0, 0)).toThrow(RangeError);
  });

  it('final check arms req_event and sees requests produced meanwhile', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    expect(back.finalCheckForRequests()).toBe(false);
    expect(header(mem)[REQ_EVENT]).toBe(1);
    front.writeRequest(request(7));
    expect(front.pushRequests()).toBe(true);
    expect(back.finalCheckForRequests()).toBe(true);
    back.consumeRequest(new BlkifRequestCopy());
    expect(back.finalCheckForRequests()).toBe(false);
    expect(header(mem)[REQ_EVENT]).toBe(2);
    // A push that does not cross req_event does not notify.
    header(mem)[REQ_EVENT] = 10;
    front.writeRequest(request(8));
    expect(front.pushRequests()).toBe(false);
  });

  it('stops on a req_prod more than a ring ahead, without spinning', () => {
    const mem = ringMemory(1);
    FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    header(mem)[REQ_PROD] = 33;
    expect(back.pendingRequests()).toBe(0);
    expect(back.fault?.reason).toBe('request-overflow');
    expect(back.fault?.message).toMatch(/req_prod 33 .* ring stopped/);
    // Even once the frontend "fixes" it, the ring stays stopped.
    header(mem)[REQ_PROD] = 1;
    expect(back.consumeRequest(new BlkifRequestCopy())).toBe(false);
    expect(back.finalCheckForRequests()).toBe(false);
    expect(back.reqCons).toBe(0);
  });

  it('counts unanswered requests against the room: 32 in flight + 1 more is an overflow', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    for (let i = 0; i < 32; i++) front.writeRequest(request(i));
    front.pushRequests();
    const c = new BlkifRequestCopy();
    let n = 0;
    while (back.consumeRequest(c)) n++;
    expect(n).toBe(32);
    expect(back.fault).toBeNull();
    header(mem)[REQ_PROD] = 33; // nothing was answered: no slot is free
    expect(back.pendingRequests()).toBe(0);
    expect(back.fault?.reason).toBe('request-overflow');
  });

  it('stops on a req_prod that moved backwards', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    for (let i = 0; i < 4; i++) front.writeRequest(request(i));
    front.pushRequests();
    while (back.consumeRequest(new BlkifRequestCopy()));
    header(mem)[REQ_PROD] = 2;
    expect(back.pendingRequests()).toBe(0);
    expect(back.fault?.reason).toBe('request-overflow');
  });

  it('works across the u32 wrap of the indexes', () => {
    const mem = ringMemory(2);
    const start = 0xfffffff0;
    headerAt(mem, start);
    const front = FrontRing.attach(mem, X86_64_ABI, 2, start);
    const back = BackRing.attach(mem, X86_64_ABI, 2);
    expect(back.reqCons).toBe(start);
    const c = new BlkifRequestCopy();
    const r = new BlkifResponseCopy();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) front.writeRequest(request(round * 100 + i));
      front.pushRequests();
      let k = 0;
      while (back.consumeRequest(c)) {
        expect(c.idLo).toBe(round * 100 + k);
        back.writeResponse(back.rspProdPvt + k, c.idLo, 0, c.operation, 0);
        k++;
      }
      expect(k).toBe(20);
      back.publishResponses(k);
      for (let i = 0; i < 20; i++) {
        expect(front.consumeResponse(r)).toBe(true);
        expect(r.idLo).toBe(round * 100 + i);
      }
    }
    expect(back.reqCons).toBe((start + 100) >>> 0);
    expect(header(mem)[RSP_PROD]).toBe((start + 100) >>> 0);
  });

  it('resumes after a crash: the unanswered requests are consumed again', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    let back = BackRing.attach(mem, X86_64_ABI, 1);
    for (let i = 0; i < 6; i++) front.writeRequest(request(i));
    front.pushRequests();
    const c = new BlkifRequestCopy();
    while (back.consumeRequest(c));
    back.writeResponse(0, 0, 0, 0, 0);
    back.writeResponse(1, 1, 0, 0, 0);
    back.publishResponses(2);
    // The process dies; its private indexes are lost. A new one attaches.
    back = BackRing.attach(mem, X86_64_ABI, 1);
    expect([back.reqCons, back.rspProdPvt]).toEqual([2, 2]);
    const again: number[] = [];
    while (back.consumeRequest(c)) again.push(c.idLo);
    expect(again).toEqual([2, 3, 4, 5]);
  });

  it('replays a publication journal: slots written, rsp_prod not advanced', () => {
    const mem = ringMemory(1);
    const front = FrontRing.init(mem, X86_64_ABI, 1);
    let back = BackRing.attach(mem, X86_64_ABI, 1);
    for (let i = 0; i < 4; i++) front.writeRequest(request(i));
    front.pushRequests();
    const c = new BlkifRequestCopy();
    while (back.consumeRequest(c));
    const journal = { start: back.rspProdPvt, ids: [0, 1, 2] };
    journal.ids.forEach((id, k) => back.writeResponse(journal.start + k, id, 0, BLKIF_OP_READ, 0));
    // Killed before publishResponses: slots 0..2 now hold responses, rsp_prod is still 0.
    back = BackRing.attach(mem, X86_64_ABI, 1);
    const tail = unpublishedTail(journal.start, journal.ids.length, back.rspProdPvt);
    expect(tail).toBe(3);
    back.markConsumed(tail);
    for (let k = journal.ids.length - tail; k < journal.ids.length; k++) {
      back.writeResponse(journal.start + k, journal.ids[k], 0, BLKIF_OP_READ, 0);
    }
    back.publishResponses(tail);
    // Only request 3 is left to consume: the response slots are not taken for requests.
    const left: number[] = [];
    while (back.consumeRequest(c)) left.push(c.idLo);
    expect(left).toEqual([3]);
    const r = new BlkifResponseCopy();
    const got: number[] = [];
    while (front.consumeResponse(r)) got.push(r.idLo);
    expect(got).toEqual([0, 1, 2]);
  });

  it('unpublishedTail: how much of a journaled batch rsp_prod has not reached', () => {
    expect(unpublishedTail(10, 4, 10)).toBe(4);
    expect(unpublishedTail(10, 4, 12)).toBe(2);
    expect(unpublishedTail(10, 4, 14)).toBe(0);
    expect(unpublishedTail(10, 4, 20)).toBe(0); // stale journal
    expect(unpublishedTail(10, 4, 3)).toBe(0); // rsp_prod outside the batch: ignore
    expect(unpublishedTail(0xfffffffe, 4, 0xffffffff)).toBe(3);
    expect(unpublishedTail(0xfffffffe, 4, 2)).toBe(0);
  });

  it('markConsumed is bounded by the free slots', () => {
    const mem = ringMemory(1);
    FrontRing.init(mem, X86_64_ABI, 1);
    const back = BackRing.attach(mem, X86_64_ABI, 1);
    expect(() => back.markConsumed(33)).toThrow(RangeError);
    expect(() => back.markConsumed(-1)).toThrow(RangeError);
    back.markConsumed(32);
    expect(back.unanswered).toBe(32);
  });

  it('rejects views that are not a ring of 2^order pages, order <= 4', () => {
    expect(() => BackRing.attach(ringMemory(3), X86_64_ABI, 3)).toThrow(/2\^order/);
    expect(() => BackRing.attach(ringMemory(32), X86_64_ABI, 32)).toThrow(/2\^order/);
    expect(() => BackRing.attach(ringMemory(1), X86_64_ABI, 2)).toThrow(/8192 needed/);
    const m = ringMemory(2);
    expect(() => BackRing.attach(m.subarray(4), X86_64_ABI, 1)).toThrow(/aligned/);
    expect(BackRing.attach(ringMemory(16), X86_64_ABI, 16).entries).toBe(512);
  });
});
