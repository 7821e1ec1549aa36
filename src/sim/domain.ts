// A simulated guest domain living in the host process: its memory (shared with backends through
// a file), its grant table, and its event channels through the same port interface the daemon uses.
import type { EventChannel, EvtchnPort } from '../io/ports';
import { SimXenError } from '../io/sim/errors';
import { BoundPort } from '../io/sim/evtchn-port';
import type { GrantPins } from './hv/grant-pins';
import { EvtchnError, type EventChannelTable, type PortOwner } from './hv/evtchn-table';
import type { GuestGrantTable } from './grant-table';
import type { DomainMemory } from './memory';

export interface CreateDomainOptions {
  /** Default 256 MiB; sparse, so untouched pages cost nothing. */
  memoryBytes?: number;
  /** Pages holding the grant table (512 refs each). Default 32. */
  grantFrames?: number;
}

export class SimDomain {
  /** The guest's event channels (what a frontend uses: allocUnbound for its backend). */
  readonly evtchn: EventChannel;
  private readonly local: LocalEventChannel;

  constructor(
    readonly domid: number,
    /** Distinguishes this domain from an earlier one with the same domid. */
    readonly generation: number,
    readonly mem: DomainMemory,
    readonly grants: GuestGrantTable,
    readonly pins: GrantPins,
    table: EventChannelTable,
  ) {
    this.local = new LocalEventChannel(domid, table);
    this.evtchn = this.local;
  }

  /** All of the guest's memory, without copy. */
  get memory(): Uint8Array {
    return this.mem.bytes;
  }

  get path(): string {
    return this.mem.file.path;
  }

  allocPages(n: number): number[] {
    return this.mem.allocPages(n);
  }

  allocContiguous(n: number): number[] | undefined {
    return this.mem.allocContiguous(n);
  }

  freePages(frames: readonly number[]): void {
    this.mem.freePages(frames);
  }

  page(frame: number): Uint8Array {
    return this.mem.page(frame);
  }

  grantAccess(frame: number, grantee: number, readonly: boolean): number {
    return this.grants.grantAccess(frame, grantee, readonly);
  }

  /** false while the grant is still mapped: retry later. */
  endAccess(ref: number): boolean {
    return this.grants.endAccess(ref);
  }

  /** Called by the hypervisor when the domain is destroyed. */
  teardown(): void {
    this.local.teardown();
  }
}

/** The in-process EventChannel: deliveries are batched onto setImmediate, never re-entrant. */
class LocalEventChannel implements EventChannel, PortOwner {
  readonly name: string;
  private readonly ports = new Map<number, BoundPort>();
  private queue: number[] = [];
  private scheduled = false;
  private dead = false;
  private readonly ops = {
    notify: (port: number) => this.table.send(this.domid, port, this),
    unmask: (port: number) => this.table.unmask(this.domid, port, this),
    unbind: async (port: number) => {
      this.ports.delete(port);
      if (!this.dead) this.table.close(this.domid, port, this);
    },
  };

  constructor(
    private readonly domid: number,
    private readonly table: EventChannelTable,
  ) {
    this.name = `d${domid} (in-process)`;
  }

  async bindInterdomain(remoteDomid: number, remotePort: number): Promise<EvtchnPort> {
    const port = this.call(`bind_interdomain d${remoteDomid} port ${remotePort}`, () =>
      this.table.bindInterdomain(this.domid, this, remoteDomid, remotePort),
    );
    return this.track(new BoundPort(port, remoteDomid, remotePort, this.ops));
  }

  async allocUnbound(remoteDomid: number): Promise<EvtchnPort> {
    const port = this.call(`alloc_unbound d${remoteDomid}`, () => this.table.allocUnbound(this.domid, this, remoteDomid));
    return this.track(new BoundPort(port, remoteDomid, 0, this.ops));
  }

  async close(): Promise<void> {
    await Promise.all([...this.ports.values()].map((p) => p.unbind()));
  }

  deliver(_domid: number, port: number): void {
    this.queue.push(port);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  teardown(): void {
    this.dead = true;
    for (const p of this.ports.values()) p.lost();
    this.ports.clear();
  }

  private flush(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const port of q) this.ports.get(port)?.fire();
  }

  private track(p: BoundPort): BoundPort {
    // A delivery queued by the bind itself finds the port once it is tracked.
    this.ports.set(p.localPort, p);
    return p;
  }

  private call<T>(op: string, f: () => T): T {
    if (this.dead) throw new SimXenError(op, 'ESRCH', `domain ${this.domid} is destroyed`);
    try {
      return f();
    } catch (e) {
      if (e instanceof EvtchnError) throw new SimXenError(op, e.code, e.message);
      throw e;
    }
  }
}
