// Replies wait for the data they acknowledge to be durable; replies that do not depend on a
// pending change leave at once. The flush is driven by hand here to hit each ordering.
import { createDuplexPair } from '../../src/io/xs/duplex-pair';
import { silentLogger } from '../../src/io/xs/logger';
import { ServerConnection, type ConnectionHost } from '../../src/io/xs/server/connection';
import { OutputGate, type StagedWrites } from '../../src/io/xs/server/output-gate';
import { FrameDecoder, XsType } from '../../src/io/xs/wire';

class ManualFlush implements StagedWrites {
  dirty = false;
  private release: (() => void) | undefined;
  flushes = 0;
  flush(): Promise<void> {
    this.flushes++;
    this.dirty = false;
    return new Promise((r) => (this.release = r));
  }
  finish(): void {
    const r = this.release;
    this.release = undefined;
    r?.();
  }
}

const tick = () => new Promise((r) => setImmediate(r));

function setup() {
  const persist = new ManualFlush();
  const gate = new OutputGate(persist, silentLogger);
  const host: ConnectionHost = { handleFrame: () => {}, queued: (c, at) => gate.queued(c, at), closed: () => {}, badFrame: () => {}, log: silentLogger };
  const [mine, theirs] = createDuplexPair();
  const conn = new ServerConnection(1, 0, 'test', mine, host, 1 << 20);
  const seen: number[] = [];
  const d = new FrameDecoder();
  theirs.on('data', (c: Buffer) => d.push(c, (f) => seen.push(f.reqId)));
  const reply = (reqId: number) => conn.send(XsType.READ, reqId, 0, Buffer.from('x'));
  const change = () => {
    persist.dirty = true;
    gate.changed();
  };
  return { persist, reply, change, seen, conn };
}

describe('output gate (persistence)', () => {
  it('lets a reply out at once when nothing is pending, and holds one that follows a change', async () => {
    const { persist, reply, change, seen } = setup();
    reply(1);
    change();
    reply(2);
    await tick();
    expect(seen).toEqual([1]);
    expect(persist.flushes).toBe(1);
    persist.finish();
    await tick();
    expect(seen).toEqual([1, 2]);
  });

  it('holds replies queued during a flush until the next flush covers their changes', async () => {
    const { persist, reply, change, seen } = setup();
    change();
    reply(1);
    await tick();
    expect(seen).toEqual([]);
    // While the first batch is being written, another change and its reply.
    change();
    reply(2);
    persist.finish();
    await tick();
    expect(seen).toEqual([1]);
    expect(persist.flushes).toBe(2);
    persist.finish();
    await tick();
    expect(seen).toEqual([1, 2]);
  });

  it('releases everything once no change is pending', async () => {
    const { persist, reply, change, seen } = setup();
    change();
    reply(1);
    reply(2);
    await tick();
    reply(3); // queued during the flush, no new change
    persist.finish();
    await tick();
    expect(seen).toEqual([1, 2, 3]);
    reply(4);
    await tick();
    expect(seen).toEqual([1, 2, 3, 4]);
  });
});
