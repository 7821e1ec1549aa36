// A client of the simulated hypervisor in its own process, driven by JSON lines on stdin:
// each command gets one JSON reply line on stdout; port events are reported as they come.
import * as readline from 'node:readline';
import { allocDma } from '../../../src/io/dma';
import type { EvtchnPort, GrantMapping } from '../../../src/io/ports';
import { connectSimHypervisor } from '../../../src/io/sim';

type Cmd = { seq: number; cmd: string; [k: string]: unknown };

async function main(): Promise<void> {
  const [socketPath, domidText] = process.argv.slice(2);
  const conn = await connectSimHypervisor(socketPath, { domid: Number(domidText), log: { warn: () => {} } });
  const maps: GrantMapping[] = [];
  const ports: EvtchnPort[] = [];
  const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

  const run = async (c: Cmd): Promise<object> => {
    switch (c.cmd) {
      case 'map': {
        const m = await conn.gnttab.map(c.domid as number, c.refs as number[], c.writable as boolean);
        maps.push(m);
        return { mapping: maps.length - 1, length: m.view.length };
      }
      case 'read': {
        const m = maps[c.mapping as number];
        return { hex: Buffer.from(m.view.subarray(c.offset as number, (c.offset as number) + (c.len as number))).toString('hex') };
      }
      case 'write': {
        const m = maps[c.mapping as number];
        m.view.set(Buffer.from(c.hex as string, 'hex'), c.offset as number);
        return {};
      }
      case 'unmap':
        await maps[c.mapping as number].unmap();
        return {};
      case 'copy': {
        const segs = c.segments as { toGuest: boolean; domid: number; ref: number; guestOffset: number; len: number; hex?: string }[];
        const local = allocDma(segs.length * 4096);
        const segments = segs.map((s, i) => {
          if (s.hex) local.view.set(Buffer.from(s.hex, 'hex'), i * 4096);
          return { ...s, local, localOffset: i * 4096 };
        });
        const statuses = new Int16Array(segs.length);
        const failed = conn.gnttab.copy(segments, segs.length, statuses);
        const data = segs.map((s, i) => Buffer.from(local.view.subarray(i * 4096, i * 4096 + s.len)).toString('hex'));
        local.free();
        return { failed, statuses: [...statuses], data };
      }
      case 'bind': {
        const p = await conn.evtchn.bindInterdomain(c.domid as number, c.port as number);
        ports.push(p);
        const idx = ports.length - 1;
        p.events$.subscribe(() => {
          out({ event: idx });
          if (c.echo) {
            p.unmask();
            p.notify();
          }
        });
        return { port: idx, localPort: p.localPort };
      }
      case 'alloc': {
        const p = await conn.evtchn.allocUnbound(c.domid as number);
        ports.push(p);
        const idx = ports.length - 1;
        p.events$.subscribe(() => out({ event: idx }));
        return { port: idx, localPort: p.localPort };
      }
      case 'notify':
        ports[c.port as number].notify();
        return {};
      case 'unmask':
        ports[c.port as number].unmask();
        return {};
      case 'unbind':
        await ports[c.port as number].unbind();
        return {};
      case 'close':
        await conn.close();
        return {};
      case 'kill':
        process.kill(process.pid, 'SIGKILL');
        return {};
      default:
        throw new Error(`unknown command ${c.cmd}`);
    }
  };

  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const c = JSON.parse(line) as Cmd;
    run(c).then(
      (r) => out({ seq: c.seq, ok: true, ...r }),
      (e: Error & { code?: string }) => out({ seq: c.seq, ok: false, code: e.code, message: e.message }),
    );
  });
  out({ ready: true });
}

main().catch((e) => {
  process.stdout.write(`${JSON.stringify({ fatal: (e as Error).message })}\n`);
  process.exit(1);
});
