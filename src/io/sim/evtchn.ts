// The daemon's EventChannel on the simulated host: ports live in the hypervisor; notify and
// unmask are one-way frames, deliveries arrive as EVENT frames.
import type { EventChannel, EvtchnPort } from '../ports';
import { BoundPort, type PortOps } from './evtchn-port';
import type { HvClient } from './hv-client';
import { MSG } from './protocol';

export class SimEventChannel implements EventChannel {
  private readonly ports = new Map<number, BoundPort>();
  /** Ports that fired before their bind reply was handed to the caller. */
  private readonly early = new Set<number>();
  private readonly ops: PortOps;

  constructor(private readonly client: HvClient) {
    this.ops = {
      notify: (port) => client.send(MSG.NOTIFY, port),
      unmask: (port) => client.send(MSG.UNMASK, port),
      unbind: async (port) => {
        this.ports.delete(port);
        if (client.alive) await client.call(`unbind port ${port}`, MSG.UNBIND, MSG.OK, [port]);
      },
    };
    client.onEvent = (port) => {
      const p = this.ports.get(port);
      if (p) p.fire();
      else this.early.add(port);
    };
    client.onLost(() => {
      for (const p of this.ports.values()) p.lost();
      this.ports.clear();
    });
  }

  async bindInterdomain(remoteDomid: number, remotePort: number): Promise<EvtchnPort> {
    const op = `bind_interdomain d${remoteDomid} port ${remotePort}`;
    const reply = await this.client.call(op, MSG.BIND_INTERDOMAIN, MSG.PORT, [remoteDomid, remotePort]);
    return this.track(new BoundPort(reply.readUInt32LE(0), remoteDomid, remotePort, this.ops));
  }

  async allocUnbound(remoteDomid: number): Promise<EvtchnPort> {
    const reply = await this.client.call(`alloc_unbound d${remoteDomid}`, MSG.ALLOC_UNBOUND, MSG.PORT, [remoteDomid]);
    return this.track(new BoundPort(reply.readUInt32LE(0), remoteDomid, 0, this.ops));
  }

  async close(): Promise<void> {
    await Promise.all([...this.ports.values()].map((p) => p.unbind()));
  }

  private track(p: BoundPort): BoundPort {
    // The EVENT a bind raises arrives with its reply, before the awaiting caller runs.
    this.ports.set(p.localPort, p);
    if (this.early.delete(p.localPort)) p.fire();
    return p;
  }
}
