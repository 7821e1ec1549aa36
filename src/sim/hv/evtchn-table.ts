// Event channels of every simulated domain, with Xen's interdomain rules and the delivery
// semantics of Linux's /dev/xen/evtchn: a delivery masks the port until its owner unmasks it;
// notifications meanwhile coalesce into one pending bit.

/** Who receives a port's events: a socket connection or an in-process guest. */
export interface PortOwner {
  readonly name: string;
  deliver(domid: number, port: number): void;
}

export class EvtchnError extends Error {
  constructor(
    readonly code: 'EINVAL' | 'ESRCH' | 'ENOSPC' | 'EPERM',
    message: string,
  ) {
    super(message);
    this.name = 'EvtchnError';
  }
}

const UNBOUND = 1;
const INTERDOMAIN = 2;

interface Channel {
  state: typeof UNBOUND | typeof INTERDOMAIN;
  remoteDomid: number;
  remotePort: number;
  owner: PortOwner;
  pending: boolean;
  masked: boolean;
}

export interface ChannelInfo {
  state: 'unbound' | 'interdomain';
  remoteDomid: number;
  remotePort: number;
  owner: string;
  pending: boolean;
  masked: boolean;
}

export class EventChannelTable {
  private readonly domains = new Map<number, (Channel | undefined)[]>();

  /** maxPorts: ports 1..maxPorts-1 (port 0 is never valid, as in Xen). */
  constructor(readonly maxPorts = 4096) {}

  addDomain(domid: number): void {
    if (!this.domains.has(domid)) this.domains.set(domid, []);
  }

  hasDomain(domid: number): boolean {
    return this.domains.has(domid);
  }

  /** Closes every port of the domain (peers become unbound), then forgets it. */
  removeDomain(domid: number): void {
    const chans = this.domains.get(domid);
    if (!chans) return;
    for (let p = 1; p < chans.length; p++) if (chans[p]) this.free(domid, p);
    this.domains.delete(domid);
  }

  /** A port that remoteDomid may bind to (EVTCHNOP_alloc_unbound). */
  allocUnbound(domid: number, owner: PortOwner, remoteDomid: number): number {
    const chans = this.chans(domid);
    if (!this.domains.has(remoteDomid)) throw new EvtchnError('ESRCH', `domain ${remoteDomid} does not exist`);
    const port = this.freePort(chans, domid);
    chans[port] = { state: UNBOUND, remoteDomid, remotePort: 0, owner, pending: false, masked: false };
    return port;
  }

  /** Connects a new local port to remoteDomid's unbound port reserved for domid. */
  bindInterdomain(domid: number, owner: PortOwner, remoteDomid: number, remotePort: number): number {
    const chans = this.chans(domid);
    const rchans = this.domains.get(remoteDomid);
    if (!rchans) throw new EvtchnError('ESRCH', `domain ${remoteDomid} does not exist`);
    const r = this.valid(remotePort) ? rchans[remotePort] : undefined;
    if (!r) throw new EvtchnError('EINVAL', `d${remoteDomid} port ${remotePort} is not allocated`);
    if (r.state !== UNBOUND) throw new EvtchnError('EINVAL', `d${remoteDomid} port ${remotePort} is already connected`);
    if (r.remoteDomid !== domid)
      throw new EvtchnError('EINVAL', `d${remoteDomid} port ${remotePort} is reserved for d${r.remoteDomid}, not d${domid}`);
    const port = this.freePort(chans, domid);
    chans[port] = { state: INTERDOMAIN, remoteDomid, remotePort, owner, pending: false, masked: false };
    r.state = INTERDOMAIN;
    r.remotePort = port;
    // Xen raises the new local port: notifications sent while the peer was unbound were lost.
    this.raise(domid, port, chans[port]!);
    return port;
  }

  /** EVTCHNOP_close by the port's owner. */
  close(domid: number, port: number, owner: PortOwner): void {
    this.owned(domid, port, owner);
    this.free(domid, port);
  }

  /** EVTCHNOP_send: an unbound port (a dead or absent peer) drops the notification, as in Xen. */
  send(domid: number, port: number, owner: PortOwner): void {
    const c = this.owned(domid, port, owner);
    if (c.state !== INTERDOMAIN) return;
    const rc = this.domains.get(c.remoteDomid)?.[c.remotePort];
    if (rc) this.raise(c.remoteDomid, c.remotePort, rc);
  }

  /** Re-enables delivery; a notification that arrived while masked is delivered now. */
  unmask(domid: number, port: number, owner: PortOwner): void {
    const c = this.owned(domid, port, owner);
    c.masked = false;
    if (c.pending) {
      c.pending = false;
      c.masked = true;
      c.owner.deliver(domid, port);
    }
  }

  /** Closes every port `owner` holds in domid (its process or guest went away). */
  closeOwnedBy(domid: number, owner: PortOwner): number {
    const chans = this.domains.get(domid);
    if (!chans) return 0;
    let n = 0;
    for (let p = 1; p < chans.length; p++) {
      if (chans[p]?.owner === owner) {
        this.free(domid, p);
        n++;
      }
    }
    return n;
  }

  info(domid: number, port: number): ChannelInfo | undefined {
    const c = this.valid(port) ? this.domains.get(domid)?.[port] : undefined;
    if (!c) return undefined;
    return {
      state: c.state === UNBOUND ? 'unbound' : 'interdomain',
      remoteDomid: c.remoteDomid,
      remotePort: c.remotePort,
      owner: c.owner.name,
      pending: c.pending,
      masked: c.masked,
    };
  }

  private raise(domid: number, port: number, c: Channel): void {
    if (c.masked) {
      c.pending = true;
      return;
    }
    c.masked = true;
    c.owner.deliver(domid, port);
  }

  private free(domid: number, port: number): void {
    const chans = this.domains.get(domid)!;
    const c = chans[port]!;
    chans[port] = undefined;
    if (c.state === INTERDOMAIN) {
      const r = this.domains.get(c.remoteDomid)?.[c.remotePort];
      if (r && r.state === INTERDOMAIN && r.remotePort === port && r.remoteDomid === domid) {
        // The peer stays allocated, reserved for us: a restarted backend can bind to it again.
        r.state = UNBOUND;
        r.remotePort = 0;
      }
    }
  }

  private chans(domid: number): (Channel | undefined)[] {
    const chans = this.domains.get(domid);
    if (!chans) throw new EvtchnError('ESRCH', `domain ${domid} does not exist`);
    return chans;
  }

  private owned(domid: number, port: number, owner: PortOwner): Channel {
    const c = this.valid(port) ? this.domains.get(domid)?.[port] : undefined;
    if (!c || c.owner !== owner) throw new EvtchnError('EINVAL', `d${domid} port ${port} is not bound here`);
    return c;
  }

  private valid(port: number): boolean {
    return Number.isInteger(port) && port > 0 && port < this.maxPorts;
  }

  private freePort(chans: (Channel | undefined)[], domid: number): number {
    for (let p = 1; p < this.maxPorts; p++) if (!chans[p]) return p;
    throw new EvtchnError('ENOSPC', `d${domid} has no free event channel port`);
  }
}
