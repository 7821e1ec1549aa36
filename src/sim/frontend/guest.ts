// A simulated guest's block frontends: like Linux's xenbus probe, it watches its device/vbd
// directory and runs one blkfront statechart per disk the toolstack gives it.
import type { Subscription } from 'rxjs';
import { type Actor, createActor } from 'xstate';
import type { XenStore } from '../../io/xs/client';
import type { Logger } from '../../log';
import {
  BACKEND_INFO_KEYS,
  type BlkifProtocol,
  type DeviceIdentity,
  type FrontendEvent,
  deviceIdentity,
  frontendMachine,
  observeXenbusState,
} from '../../machines';
import { readKeys } from '../../effects/xenstore';
import { TransitionObserver } from '../../replay/observe';
import type { SessionTap } from '../../replay/tap';
import type { SimDomain } from '../domain';
import { frontendEffects } from './frontend-effects';
import type { GuestQueue, GuestQueueFactory } from './guest-queue';
import type { DiskInput } from '../../machines';

export interface SimGuestOptions {
  readonly xs: XenStore;
  readonly domain: SimDomain;
  readonly queueFactory: GuestQueueFactory;
  readonly logger: Logger;
  readonly maxRingPageOrder?: number;
  readonly protocol?: BlkifProtocol;
  readonly persistent?: boolean;
  readonly onDisk?: (devid: number, queue: GuestQueue | null, input: DiskInput | null) => void;
  /** Session recording (src/replay) of the frontends' inputs and transitions. */
  readonly recording?: SessionTap;
}

interface Frontend {
  readonly identity: DeviceIdentity;
  readonly actor: Actor<typeof frontendMachine>;
  readonly subscriptions: Subscription[];
}

const BACKEND_PATH = /^\/local\/domain\/(\d+)\/backend\/([A-Za-z0-9_-]+)\/(\d+)\/(\d+)$/;

export class SimGuest {
  private readonly frontends = new Map<number, Frontend>();
  private readonly machine;
  private readonly effects;
  private watch?: Subscription;
  private scanning: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: SimGuestOptions) {
    this.effects = frontendEffects({ xs: opts.xs, domain: opts.domain, queueFactory: opts.queueFactory, logger: opts.logger, onDisk: opts.onDisk, intents: opts.recording });
    this.machine = frontendMachine.provide({ actors: this.effects.actors as never });
  }

  get domid(): number {
    return this.opts.domain.domid;
  }

  start(): void {
    const dir = `/local/domain/${this.domid}/device/vbd`;
    // A burst of firings needs one scan, and a firing during a scan one more after it.
    let queued = false;
    this.watch = this.opts.xs.watch(dir).subscribe(() => {
      if (queued) return;
      queued = true;
      this.scanning = this.scanning
        .then(() => {
          queued = false;
          return this.scan(dir);
        })
        .catch((err) => this.opts.logger.warn({ err, domid: this.domid }, 'guest device scan failed'));
    });
  }

  private async scan(dir: string): Promise<void> {
    if (this.closed) return;
    const { xs } = this.opts;
    const names = await xs.directory(dir).catch(() => [] as string[]);
    const present = new Set<number>();
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      const devid = Number(name);
      const keys = await readKeys(xs, `${dir}/${name}`, ['backend', 'backend-id', 'state']);
      if (keys.state === undefined || keys.backend === undefined) continue;
      present.add(devid);
      if (!this.frontends.has(devid)) this.probe(devid, keys.backend);
    }
    for (const devid of [...this.frontends.keys()]) if (!present.has(devid)) this.remove(devid);
  }

  /** Like xenbus_probe_frontend: a new device directory gets a driver. */
  private probe(devid: number, backendPath: string): void {
    const m = BACKEND_PATH.exec(backendPath);
    if (!m) {
      this.opts.logger.warn({ devid, backendPath }, 'guest ignores a disk whose backend path it cannot read');
      return;
    }
    const identity = deviceIdentity({ backendDomid: Number(m[1]), backendType: m[2], frontendDomid: this.domid, devid });
    const input = {
      identity,
      settings: { maxRingPageOrder: this.opts.maxRingPageOrder ?? 4, protocol: this.opts.protocol ?? 'x86_64-abi', persistent: this.opts.persistent ?? true },
    };
    const tap = this.opts.recording;
    const device = `${this.domid}/${devid}`;
    const observer = tap && new TransitionObserver((event, from, to) => {
      if (tap.recording) tap.transition({ machine: 'blkfront', device, at: Date.now(), event, from, to });
    });
    const actor = createActor(this.machine, { input, inspect: observer?.inspect });
    observer?.bind(actor);
    const fe: Frontend = { identity, actor, subscriptions: [] };
    this.frontends.set(devid, fe);
    actor.start();
    if (tap?.recording) tap.created({ machine: 'blkfront', device, input, state: actor.getSnapshot().value });
    let reading = Promise.resolve();
    fe.subscriptions.push(
      this.opts.xs.watch(`${identity.backendPath}/state`).subscribe(() => {
        reading = reading.then(async () => {
          const state = await this.opts.xs.tryRead(`${identity.backendPath}/state`);
          const keys = await readKeys(this.opts.xs, identity.backendPath, BACKEND_INFO_KEYS);
          if (this.frontends.get(devid) === fe) actor.send({ type: 'backend.changed', state: observeXenbusState(state), keys } satisfies FrontendEvent);
        }).catch((err) => this.opts.logger.debug({ err, devid }, 'guest could not read its backend'));
      }),
    );
  }

  private remove(devid: number): void {
    const fe = this.frontends.get(devid);
    if (!fe) return;
    this.frontends.delete(devid);
    fe.subscriptions.forEach((s) => s.unsubscribe());
    fe.actor.stop();
    this.opts.recording?.retired('blkfront', `${this.domid}/${devid}`);
  }

  frontend(devid: number): Actor<typeof frontendMachine> | undefined {
    return this.frontends.get(devid)?.actor;
  }

  devids(): number[] {
    return [...this.frontends.keys()];
  }

  /** The guest unloads its block driver for this disk (rmmod / unbind). */
  unloadDriver(devid: number): void {
    this.frontends.get(devid)?.actor.send({ type: 'driver.unload' });
  }

  /** The guest loads the driver again. */
  loadDriver(devid: number): void {
    this.frontends.get(devid)?.actor.send({ type: 'driver.load' });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watch?.unsubscribe();
    await this.scanning;
    for (const devid of [...this.frontends.keys()]) this.remove(devid);
    await this.effects.settled();
  }
}
