// The real bindings driven against a stand-in library built from the real headers
// (test/io-real/support/fake-xen.c): marshalling, struct encoding, masking and error paths.
import koffi = require('koffi');
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { firstValueFrom } from 'rxjs';
import { allocDma, type DmaRegion } from '../../src/io/dma';
import { PROT_READ, PROT_WRITE } from '../../src/io/libc';
import { GNTST, type GrantCopySegment } from '../../src/io/ports';
import { RealEventChannel, RealGrantTable, XenDeviceError } from '../../src/io/real';
import { compile, FAKE_XEN_SOURCE, type Built } from './support/build';

let built: Built;
let lib: koffi.LibraryHandle;
const int = (name: string) => ({
  get: () => koffi.decode(lib.symbol(name), 'int') as number,
  set: (v: number) => koffi.encode(lib.symbol(name), 'int', v),
});
const intAt = (name: string, i: number) => (koffi.decode(lib.symbol(name), 'int', 64) as number[])[i];
let page: (ref: number) => Uint8Array;
let inject: (port: number) => void;

beforeAll(() => {
  built = compile(FAKE_XEN_SOURCE, 'shared');
  lib = koffi.load(built.path);
  const fakePage = lib.func('void *fake_page(uint32_t ref)');
  page = (ref) => new Uint8Array(koffi.view(fakePage(ref), 4096));
  inject = lib.func('void fake_evtchn_inject(uint32_t port)');
});
afterAll(() => built.cleanup());

describe('RealGrantTable over libxengnttab', () => {
  let gt: RealGrantTable;
  let dma: DmaRegion;
  beforeEach(() => {
    int('fake_open_errno').set(0);
    int('fake_copy_fail_errno').set(0);
    gt = new RealGrantTable({ library: built.path });
    dma = allocDma(64 * 1024);
  });
  afterEach(async () => {
    await gt.close();
    dma.free();
  });

  it('sets max grants when it opens', () => {
    new RealGrantTable({ library: built.path, maxGrants: 1234 }).open();
    expect(int('fake_max_grants').get()).toBe(1234);
    gt.open();
    expect(int('fake_max_grants').get()).toBe(8192);
  });

  it('maps refs into one view over the granted pages, without copy', async () => {
    page(3).fill(3);
    page(5).fill(5);
    const m = await gt.map(7, [5, 3], true);
    expect(int('fake_last_prot').get()).toBe(PROT_READ | PROT_WRITE);
    expect(m.view.length).toBe(8192);
    expect([m.view[0], m.view[4096]]).toEqual([5, 3]);
    m.view[4097] = 0x99;
    expect(page(3)[1]).toBe(0x99);
    expect(int('fake_live_maps').get()).toBe(1);
    await m.unmap();
    await m.unmap();
    expect(int('fake_live_maps').get()).toBe(0);
  });

  it('asks for a read-only mapping when not writable', async () => {
    const m = await gt.map(7, [4], false);
    expect(int('fake_last_prot').get()).toBe(PROT_READ);
    expect(m.writable).toBe(false);
    await m.unmap();
  });

  it('reports a refused map with the errno the library gives', async () => {
    await expect(gt.map(7, [1, 99], false)).rejects.toThrow(/^map d7 2 refs: EINVAL$/);
    await expect(gt.map(8, [1], false)).rejects.toMatchObject({ code: 'ESRCH', call: 'xengnttab_map_domain_grant_refs' });
    await expect(gt.map(7, [], false)).rejects.toBeInstanceOf(XenDeviceError);
    await expect(gt.map(7, [-1], false)).rejects.toThrow(/bad domid or refs/);
  });

  const seg = (s: Partial<GrantCopySegment> & { ref: number }): GrantCopySegment => ({
    toGuest: false,
    domid: 7,
    guestOffset: 0,
    len: 512,
    local: dma,
    localOffset: 0,
    ...s,
  });

  it('copies in both directions and returns each segment\'s status', () => {
    page(20).fill(0x20);
    page(21).fill(0);
    page(13).fill(0x13);
    dma.view.fill(0);
    dma.view.fill(0x77, 4096, 8192);
    const segs = [
      seg({ ref: 20, guestOffset: 100, len: 300, localOffset: 1 }),
      seg({ ref: 21, toGuest: true, guestOffset: 4000, len: 96, localOffset: 4096 }),
      seg({ ref: 20, domid: 8 }),
      seg({ ref: 64 }),
      seg({ ref: 13, toGuest: true, localOffset: 4096 }),
      seg({ ref: 20, guestOffset: 4000, len: 200 }), // crosses the page: refused here, never sent
      seg({ ref: 20, localOffset: dma.length - 100 }), // beyond the local buffer: refused here
      seg({ ref: 20, len: 0 }),
      seg({ ref: 20, domid: 0x10000 }),
    ];
    const statuses = new Int16Array(segs.length).fill(42);
    const failed = gt.copy(segs, segs.length, statuses);
    expect([...statuses]).toEqual([
      GNTST.okay,
      GNTST.okay,
      GNTST.bad_domain,
      GNTST.bad_gntref,
      GNTST.general_error,
      GNTST.bad_copy_arg,
      GNTST.bad_copy_arg,
      GNTST.okay,
      GNTST.bad_domain,
    ]);
    expect(failed).toBe(6);
    expect(int('fake_last_copy_count').get()).toBe(5);
    expect([dma.view[0], dma.view[1], dma.view[300], dma.view[301]]).toEqual([0, 0x20, 0x20, 0]);
    expect([page(21)[3999], page(21)[4000], page(21)[4095]]).toEqual([0, 0x77, 0x77]);
    expect(page(13)[0]).toBe(0x13);
  });

  it('fails every sent segment when the library call fails', () => {
    int('fake_copy_fail_errno').set(14);
    const statuses = new Int16Array(3);
    expect(gt.copy([seg({ ref: 1 }), seg({ ref: 2, len: 5000 }), seg({ ref: 3 })], 3, statuses)).toBe(3);
    expect([...statuses]).toEqual([GNTST.general_error, GNTST.bad_copy_arg, GNTST.general_error]);
  });

  it('grows its segment array for big batches', () => {
    for (let r = 0; r < 64; r++) page(r).fill(r);
    const n = 300;
    const segs = Array.from({ length: n }, (_, i) => seg({ ref: i % 64, guestOffset: 8 * (i % 16), len: 8, localOffset: 8 * i }));
    const statuses = new Int16Array(n);
    expect(gt.copy(segs, n, statuses)).toBe(0);
    expect(int('fake_last_copy_count').get()).toBe(n);
    for (let i = 0; i < n; i++) expect(dma.view[8 * i]).toBe(i % 64);
  });

  it('turns a failed open into one line', () => {
    int('fake_open_errno').set(13);
    const g = new RealGrantTable({ library: built.path });
    expect(() => g.open()).toThrow(/^cannot open \/dev\/xen\/gntdev: permission denied \(EACCES\): run as root in dom0$/);
  });
});

describe('RealEventChannel over libxenevtchn', () => {
  let ec: RealEventChannel;
  const errors: string[] = [];
  beforeEach(() => {
    int('fake_open_errno').set(0);
    errors.length = 0;
    ec = new RealEventChannel({ library: built.path, onError: (m) => errors.push(m) });
  });
  afterEach(() => ec.close());

  it('delivers the bind event, then one event per notify once unmasked', async () => {
    const p = await ec.bindInterdomain(3, 17);
    expect(p.remoteDomid).toBe(3);
    expect(p.remotePort).toBe(17);
    await firstValueFrom(p.events$); // raised by the bind
    const got = firstValueFrom(p.events$);
    p.unmask();
    expect(intAt('fake_unmasks', p.localPort)).toBe(1);
    p.notify();
    expect(intAt('fake_notifies', p.localPort)).toBe(1);
    await got;
    expect(errors).toEqual([]);
  });

  it('keeps a delivered port masked: notifications coalesce until unmask', async () => {
    const p = await ec.allocUnbound(3);
    let n = 0;
    p.events$.subscribe(() => n++);
    inject(p.localPort);
    inject(p.localPort);
    inject(p.localPort);
    await waitFor(() => n === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(n).toBe(1);
    p.unmask();
    await waitFor(() => n === 2);
    p.unmask();
    await new Promise((r) => setTimeout(r, 20));
    expect(n).toBe(2);
  });

  it('serves several ports from one handle', async () => {
    const a = await ec.allocUnbound(1);
    const b = await ec.allocUnbound(2);
    const seen: number[] = [];
    a.events$.subscribe(() => seen.push(a.localPort));
    b.events$.subscribe(() => seen.push(b.localPort));
    inject(b.localPort);
    inject(a.localPort);
    await waitFor(() => seen.length === 2);
    expect(seen.sort()).toEqual([a.localPort, b.localPort].sort());
  });

  it('reports a refused bind with its errno', async () => {
    await expect(ec.bindInterdomain(99, 1)).rejects.toThrow(/^bind_interdomain d99 port 1: ESRCH$/);
    await expect(ec.bindInterdomain(1, 0)).rejects.toMatchObject({ code: 'EINVAL', call: 'xenevtchn_bind_interdomain' });
  });

  it('unbinds: events$ completes, later notifies are dropped, close unbinds the rest', async () => {
    const a = await ec.allocUnbound(1);
    const b = await ec.allocUnbound(1);
    let done = false;
    let bDone = false;
    a.events$.subscribe({ complete: () => (done = true) });
    b.events$.subscribe({ complete: () => (bDone = true) });
    await a.unbind();
    expect(done).toBe(true);
    expect(int('fake_unbinds').get()).toBe(1);
    a.notify();
    expect(intAt('fake_notifies', a.localPort)).toBe(0);
    await ec.close();
    expect(int('fake_unbinds').get()).toBe(2);
    expect(bDone).toBe(true);
    await expect(ec.allocUnbound(1)).rejects.toThrow(/event channel is closed/);
  });

  const runChild = (mode: string) =>
    new Promise<{ out: string; code: number | null; signal: string | null }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['-r', path.join(__dirname, '../sim-hv/support/register.js'), path.join(__dirname, 'support/evtchn-child.ts'), built.path, mode],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('alive')) child.kill('SIGKILL');
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.on('exit', (code, signal) => {
        clearTimeout(killer);
        resolve({ out, code, signal });
      });
    });

  it('keeps the process alive while a port is bound, and lets it exit once none is', async () => {
    const [bound, unbound] = await Promise.all([runChild('keep'), runChild('unbind')]);
    expect(bound).toEqual({ out: 'event\nalive\n', code: null, signal: 'SIGKILL' });
    expect(unbound).toEqual({ out: 'event\n', code: 0, signal: null });
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}
