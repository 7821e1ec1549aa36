// The simulated host's hypervisor: guest domains (memory files, grant tables), event channels,
// and the hv.sock service through which other processes (the daemon) use them.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { MAX_GUEST_DOMID } from '../../io/sim/grant-rules';
import { SimDomain, type CreateDomainOptions } from '../domain';
import { GuestGrantTable } from '../grant-table';
import { DomainMemory } from '../memory';
import { EventChannelTable } from './evtchn-table';
import { GrantPins } from './grant-pins';
import { defaultHvLogger, type HvLogger } from './log';
import { Session, type SessionHost } from './session';

export interface HypervisorOptions {
  /** Names the shared-memory folder xenblkd-<hostId>. Default: random. */
  hostId?: string;
  /** Where the folder goes. Default /dev/shm. */
  shmRoot?: string;
  log?: HvLogger;
  /** Event channel ports per domain. Default 4096. */
  maxPorts?: number;
}

export const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;
export const DEFAULT_GRANT_FRAMES = 32;

export class Hypervisor implements SessionHost {
  readonly shmDir: string;
  readonly log: HvLogger;
  readonly evtchn: EventChannelTable;
  private readonly doms = new Map<number, SimDomain>();
  private readonly sessions = new Set<Session>();
  private readonly servers: net.Server[] = [];
  private generation = 0;
  private connections = 0;
  private closed = false;

  constructor(opts: HypervisorOptions = {}) {
    const hostId = opts.hostId ?? crypto.randomBytes(4).toString('hex');
    if (!/^[A-Za-z0-9_.-]+$/.test(hostId)) throw new Error(`bad host id ${JSON.stringify(hostId)}`);
    this.shmDir = path.join(opts.shmRoot ?? '/dev/shm', `xenblkd-${hostId}`);
    fs.mkdirSync(this.shmDir, { recursive: true, mode: 0o700 });
    this.log = opts.log ?? defaultHvLogger();
    this.evtchn = new EventChannelTable(opts.maxPorts);
    this.evtchn.addDomain(0); // dom0: the backends' domain, always there
  }

  createDomain(domid: number, opts: CreateDomainOptions = {}): SimDomain {
    if (this.closed) throw new Error('hypervisor is closed');
    if (!Number.isInteger(domid) || domid < 1 || domid > MAX_GUEST_DOMID) throw new RangeError(`bad guest domid ${domid}`);
    if (this.doms.has(domid)) throw new Error(`domain ${domid} already exists`);
    const mem = DomainMemory.create(
      path.join(this.shmDir, `dom${domid}.mem`),
      opts.memoryBytes ?? DEFAULT_MEMORY_BYTES,
      opts.grantFrames ?? DEFAULT_GRANT_FRAMES,
    );
    const grants = new GuestGrantTable(mem);
    this.evtchn.addDomain(domid);
    const d = new SimDomain(domid, ++this.generation, mem, grants, new GrantPins(domid, grants, mem), this.evtchn);
    this.doms.set(domid, d);
    for (const s of this.sessions) s.domainUp(d);
    this.log.info(`created d${domid}: ${mem.frames} pages, ${grants.entries} grant refs`);
    return d;
  }

  destroyDomain(domid: number): void {
    const d = this.doms.get(domid);
    if (!d) return;
    this.doms.delete(domid);
    for (const s of this.sessions) s.domainDown(d);
    d.teardown();
    this.evtchn.removeDomain(domid);
    d.mem.destroy();
    this.log.info(`destroyed d${domid}`);
  }

  domain(domid: number): SimDomain | undefined {
    return this.doms.get(domid);
  }

  domains(): Iterable<SimDomain> {
    return this.doms.values();
  }

  /** Live client connections. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Serves the hypervisor protocol on a unix socket (a stale socket file is replaced). */
  async listen(socketPath: string): Promise<void> {
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer((socket) => {
      socket.setNoDelay?.(true);
      const s = new Session(this, socket, ++this.connections);
      this.sessions.add(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.warn(`hv.sock: ${e.message}`));
    this.servers.push(server);
  }

  sessionClosed(s: Session): void {
    this.sessions.delete(s);
  }

  /** Stops serving, drops connections, destroys every domain and removes the memory folder. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r())));
    for (const s of [...this.sessions]) s.destroy();
    await Promise.all(stopped);
    for (const domid of [...this.doms.keys()]) this.destroyDomain(domid);
    fs.rmSync(this.shmDir, { recursive: true, force: true });
  }
}
