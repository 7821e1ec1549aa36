// One client connection to the hypervisor service (see src/io/sim/protocol.ts for the frames).
// Everything a connection holds (grant mappings, bound ports) is released when it goes away.
import type * as net from 'node:net';
import { GNTST } from '../../io/ports';
import { SimXenError } from '../../io/sim/errors';
import {
  FrameReader,
  FrameSink,
  MAP_FLAG_WRITABLE,
  MAX_MAP_REFS,
  MSG,
  PROTOCOL_VERSION,
} from '../../io/sim/protocol';
import type { SimDomain } from '../domain';
import { EvtchnError, type EventChannelTable, type PortOwner } from './evtchn-table';
import type { HvLogger } from './log';

/** What a session needs from the hypervisor. */
export interface SessionHost {
  readonly log: HvLogger;
  domain(domid: number): SimDomain | undefined;
  domains(): Iterable<SimDomain>;
  readonly evtchn: EventChannelTable;
  sessionClosed(s: Session): void;
}

const MAX_UNREAD_BYTES = 4 << 20;

interface MapRecord {
  domid: number;
  generation: number;
  refs: Uint32Array;
  writable: boolean;
}

export class Session implements PortOwner {
  name: string;
  private domid = -1;
  private readonly reader: FrameReader;
  private readonly sink: FrameSink;
  private readonly maps = new Map<number, MapRecord>();
  private nextHandle = 1;
  private closed = false;
  /** Events raised while a request runs go out after its reply (a bind raises its new port). */
  private deferred: number[] | null = null;

  constructor(
    private readonly host: SessionHost,
    private readonly socket: net.Socket,
    connectionId: number,
  ) {
    this.name = `conn#${connectionId}`;
    this.reader = new FrameReader((t, id, b, o, l) => {
      try {
        this.onFrame(t, id, b, o, l);
      } catch (e) {
        // A bug must cost this connection, never the host.
        this.host.log.warn(`${this.name}: internal error on frame type ${t}: ${(e as Error).message}`);
        this.destroy();
      }
    }, (type, id) => {
      if (type >= MSG.HELLO && type <= MSG.UNMASK) return true;
      this.protocolError(id, `unknown frame type ${type}`);
      return false;
    });
    this.sink = new FrameSink((chunk) => {
      if (socket.destroyed) return;
      socket.write(chunk);
      // A client that sends requests but never reads the replies must not grow our memory.
      if (socket.writableLength > MAX_UNREAD_BYTES) {
        this.host.log.warn(`${this.name}: ${socket.writableLength} bytes of replies unread, dropping the connection`);
        this.destroy();
      }
    });
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', (e) => this.host.log.warn(`${this.name}: socket error: ${e.message}`));
    socket.on('close', () => this.teardown());
  }

  deliver(_domid: number, port: number): void {
    if (this.deferred) this.deferred.push(port);
    else this.sink.send1(MSG.EVENT, 0, port);
  }

  domainUp(d: SimDomain): void {
    if (this.domid < 0) return;
    this.sink.sendText(MSG.DOMAIN_UP, 0, [d.domid, d.generation, d.mem.frames, d.mem.grantFrames], d.path);
  }

  domainDown(d: SimDomain): void {
    if (this.domid < 0) return;
    this.sink.send2(MSG.DOMAIN_DOWN, 0, d.domid, d.generation);
    // Its pins died with it; forget our records so nothing is unpinned on a successor.
    for (const [h, m] of this.maps) if (m.domid === d.domid && m.generation === d.generation) this.maps.delete(h);
  }

  /** Drops the connection (hostile input, host shutdown): releases everything at once. */
  destroy(): void {
    this.reader.stop();
    this.sink.flush(); // the last ERROR, if any
    this.teardown();
    this.socket.end();
    // A peer that never closes its end does not keep the socket.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onFrame(type: number, id: number, buf: Buffer, off: number, len: number): void {
    if (this.closed) return;
    if (this.domid < 0 && type !== MSG.HELLO) return this.protocolError(id, `frame type ${type} before HELLO`);
    switch (type) {
      case MSG.HELLO:
        return this.hello(id, buf, off, len);
      case MSG.NOTIFY:
      case MSG.UNMASK:
        if (len !== 4 || id !== 0) return this.protocolError(id, `bad ${type === MSG.NOTIFY ? 'NOTIFY' : 'UNMASK'} frame`);
        return this.oneWay(type, buf.readUInt32LE(off));
      case MSG.MAP:
        if (len < 12 || len % 4 !== 0 || (len - 8) / 4 > MAX_MAP_REFS || id === 0) return this.protocolError(id, 'bad MAP frame');
        return this.map(id, buf, off, len);
      case MSG.UNMAP:
        if (len !== 4 || id === 0) return this.protocolError(id, 'bad UNMAP frame');
        return this.unmap(id, buf.readUInt32LE(off));
      case MSG.BIND_INTERDOMAIN:
        if (len !== 8 || id === 0) return this.protocolError(id, 'bad BIND_INTERDOMAIN frame');
        return this.evtchnOp(id, `bind_interdomain d${buf.readUInt32LE(off)} port ${buf.readUInt32LE(off + 4)}`, () =>
          this.host.evtchn.bindInterdomain(this.domid, this, buf.readUInt32LE(off), buf.readUInt32LE(off + 4)),
        );
      case MSG.ALLOC_UNBOUND:
        if (len !== 4 || id === 0) return this.protocolError(id, 'bad ALLOC_UNBOUND frame');
        return this.evtchnOp(id, `alloc_unbound d${buf.readUInt32LE(off)}`, () =>
          this.host.evtchn.allocUnbound(this.domid, this, buf.readUInt32LE(off)),
        );
      case MSG.UNBIND: {
        if (len !== 4 || id === 0) return this.protocolError(id, 'bad UNBIND frame');
        const port = buf.readUInt32LE(off);
        return this.evtchnOp(id, `unbind port ${port}`, () => {
          this.host.evtchn.close(this.domid, port, this);
          return -1;
        });
      }
      default:
        return this.protocolError(id, `unknown frame type ${type}`);
    }
  }

  private hello(id: number, buf: Buffer, off: number, len: number): void {
    if (this.domid >= 0 || len !== 8 || id === 0) return this.protocolError(id, 'bad HELLO');
    const version = buf.readUInt32LE(off);
    const domid = buf.readUInt32LE(off + 4);
    if (version !== PROTOCOL_VERSION) return this.protocolError(id, `protocol version ${version}, host speaks ${PROTOCOL_VERSION}`);
    if (!this.host.evtchn.hasDomain(domid)) {
      this.host.log.warn(`${this.name}: HELLO as d${domid}, which does not exist`);
      this.sink.sendError(id, 'ESRCH', `domain ${domid} does not exist`);
      return this.destroy();
    }
    this.domid = domid;
    this.name = `${this.name} d${domid}`;
    for (const d of this.host.domains()) this.domainUp(d);
    this.sink.send1(MSG.HELLO_OK, id, PROTOCOL_VERSION);
  }

  private oneWay(type: number, port: number): void {
    try {
      if (type === MSG.NOTIFY) this.host.evtchn.send(this.domid, port, this);
      else this.host.evtchn.unmask(this.domid, port, this);
    } catch (e) {
      if (!(e instanceof EvtchnError)) throw e;
      // No reply to one-way frames: the host logs and the client learns nothing, as with a
      // notify on a bad port from userspace that nobody checks.
      this.host.log.warn(`${this.name}: ${type === MSG.NOTIFY ? 'notify' : 'unmask'}: ${e.message}`);
      this.sink.sendError(0, e.code, e.message);
    }
  }

  private map(id: number, buf: Buffer, off: number, len: number): void {
    const domid = buf.readUInt32LE(off);
    const writable = (buf.readUInt32LE(off + 4) & MAP_FLAG_WRITABLE) !== 0;
    const n = (len - 8) / 4;
    const refs = new Uint32Array(n);
    for (let i = 0; i < n; i++) refs[i] = buf.readUInt32LE(off + 8 + 4 * i);
    const d = this.host.domain(domid);
    try {
      if (!d) throw SimXenError.grant(`map d${domid}`, GNTST.bad_domain, `domain ${domid} does not exist`);
      const frames = d.pins.pin(this.domid, refs, writable);
      const handle = this.nextHandle++;
      this.maps.set(handle, { domid, generation: d.generation, refs, writable });
      this.sink.sendList(MSG.MAP_OK, id, [handle], frames);
    } catch (e) {
      if (!(e instanceof SimXenError)) throw e;
      this.host.log.warn(`${this.name}: ${e.message}`);
      this.sink.sendError(id, e.code, e.message);
    }
  }

  private unmap(id: number, handle: number): void {
    const m = this.maps.get(handle);
    if (!m) {
      this.host.log.warn(`${this.name}: unmap of unknown handle ${handle}`);
      return this.sink.sendError(id, 'EINVAL', `no mapping with handle ${handle}`);
    }
    this.release(handle, m);
    this.sink.send0(MSG.OK, id);
  }

  private release(handle: number, m: MapRecord): void {
    this.maps.delete(handle);
    const d = this.host.domain(m.domid);
    if (d && d.generation === m.generation) d.pins.unpin(m.refs, m.writable);
  }

  private evtchnOp(id: number, op: string, f: () => number): void {
    const deferred: number[] = (this.deferred = []);
    try {
      const port = f();
      if (port < 0) this.sink.send0(MSG.OK, id);
      else this.sink.send1(MSG.PORT, id, port);
    } catch (e) {
      if (!(e instanceof EvtchnError)) throw e;
      this.host.log.warn(`${this.name}: ${op}: ${e.message}`);
      this.sink.sendError(id, e.code, `${op}: ${e.message}`);
    } finally {
      this.deferred = null;
      for (const port of deferred) this.sink.send1(MSG.EVENT, 0, port);
    }
  }

  private protocolError(id: number, why: string): void {
    this.host.log.warn(`${this.name}: protocol error, dropping connection: ${why}`);
    this.sink.sendError(id, 'EPROTO', why);
    this.destroy();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.stop();
    this.sink.close();
    let mappings = 0;
    for (const [h, m] of this.maps) {
      this.release(h, m);
      mappings++;
    }
    const ports = this.domid >= 0 ? this.host.evtchn.closeOwnedBy(this.domid, this) : 0;
    if (this.domid >= 0) this.host.log.info(`${this.name}: closed; released ${mappings} mappings and ${ports} ports`);
    this.host.sessionClosed(this);
  }
}
