// EventChannel on a real dom0: /dev/xen/evtchn through libxenevtchn. The kernel masks a port when
// it delivers it (xenevtchn_pending returns it) until xenevtchn_unmask; the fd is watched by
// poll on a worker thread and drained with non-blocking xenevtchn_pending calls.
import koffi = require('koffi');
import type { EventChannel, EvtchnPort } from '../ports';
import { BoundPort, type PortOps } from '../sim/evtchn-port';
import { XenDeviceError } from './errors';
import { FdWatcher, setNonBlocking } from './fd-watcher';
import { evtchnLib, type EvtchnLib } from './libs';

const EAGAIN = 11;

export interface RealEventChannelOptions {
  /** Path of libxenevtchn (tests point it at a stand-in). */
  library?: string;
  /** Where a broken event channel device is reported. Default: stderr. */
  onError?: (message: string) => void;
}

export class RealEventChannel implements EventChannel {
  private lib: EvtchnLib | undefined;
  private handle: unknown = null;
  private watcher: FdWatcher | undefined;
  private closed = false;
  private readonly ports = new Map<number, BoundPort>();
  private readonly ops: PortOps;

  constructor(private readonly opts: RealEventChannelOptions = {}) {
    this.ops = {
      notify: (port) => {
        // Like a notification to a dead peer, a failed notify has nobody to tell.
        if (this.handle !== null) this.lib!.notify(this.handle, port);
      },
      unmask: (port) => {
        if (this.handle !== null) this.lib!.unmask(this.handle, port);
      },
      unbind: async (port) => {
        this.ports.delete(port);
        if (this.ports.size === 0) this.watcher?.stop();
        if (this.handle !== null && this.lib!.unbind(this.handle, port) < 0)
          throw XenDeviceError.failed('xenevtchn_unbind', koffi.errno(), `unbind port ${port}`);
      },
    };
  }

  /** Opens /dev/xen/evtchn now (otherwise the first bind does). */
  open(): void {
    this.h();
  }

  async bindInterdomain(remoteDomid: number, remotePort: number): Promise<EvtchnPort> {
    const h = this.h();
    const port = this.lib!.bindInterdomain(h, remoteDomid, remotePort);
    if (port < 0)
      throw XenDeviceError.failed('xenevtchn_bind_interdomain', koffi.errno(), `bind_interdomain d${remoteDomid} port ${remotePort}`);
    return this.track(new BoundPort(port, remoteDomid, remotePort, this.ops));
  }

  async allocUnbound(remoteDomid: number): Promise<EvtchnPort> {
    const h = this.h();
    const port = this.lib!.bindUnboundPort(h, remoteDomid);
    if (port < 0) throw XenDeviceError.failed('xenevtchn_bind_unbound_port', koffi.errno(), `alloc_unbound d${remoteDomid}`);
    return this.track(new BoundPort(port, remoteDomid, 0, this.ops));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.ports.values()].map((p) => p.unbind()));
    this.closed = true;
    this.watcher?.close();
    if (this.handle !== null) this.lib!.close(this.handle);
    this.handle = null;
  }

  private track(p: BoundPort): BoundPort {
    this.ports.set(p.localPort, p);
    this.watcher!.start();
    return p;
  }

  /** Every pending port, until the kernel has none (EAGAIN). */
  private drain(): void {
    const h = this.handle;
    if (h === null) return;
    for (;;) {
      const port = this.lib!.pending(h);
      if (port < 0) {
        const errno = koffi.errno();
        if (errno !== EAGAIN) this.report(`xenevtchn_pending: errno ${errno}`);
        return;
      }
      // A port unbound meanwhile is simply not there any more.
      this.ports.get(port)?.fire();
    }
  }

  private report(why: string): void {
    (this.opts.onError ?? ((m: string) => process.stderr.write(`xenevtchn: ${m}\n`)))(why);
  }

  private h(): unknown {
    if (this.handle !== null) return this.handle;
    if (this.closed) throw new XenDeviceError('xenevtchn_open', 9, 'event channel is closed');
    const lib = evtchnLib(this.opts.library);
    const h = lib.open(null, 0);
    if (h === null) throw XenDeviceError.open('xenevtchn_open', '/dev/xen/evtchn', koffi.errno());
    const fd = lib.fd(h);
    try {
      setNonBlocking(fd);
      this.watcher = new FdWatcher(fd, () => this.drain(), (why) => this.report(why));
    } catch (e) {
      lib.close(h);
      throw e;
    }
    this.lib = lib;
    this.handle = h;
    return h;
  }
}
