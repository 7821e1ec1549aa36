// One bound event-channel port as the EvtchnPort port interface: delivery, masking hand-off,
// unbind. Shared by the simulated ports (socket and in-process) and the real ones; only PortOps differ.
// rxjs's root module loads every operator (hundreds of files unbundled): a restarted dataplane
// needs these two.
import { Observable } from 'rxjs/internal/Observable';
import { Subject } from 'rxjs/internal/Subject';
import type { EvtchnPort } from '../ports';

export interface PortOps {
  notify(port: number): void;
  unmask(port: number): void;
  unbind(port: number): Promise<void>;
}

export class BoundPort implements EvtchnPort {
  private readonly subject = new Subject<void>();
  /** A delivery that came before anyone subscribed (e.g. the one a bind raises). */
  private held = false;
  /** The first subscriber also gets a delivery nobody saw: the port is masked until it is handled. */
  readonly events$ = new Observable<void>((sub) => {
    const inner = this.subject.subscribe(sub);
    if (this.held && this.bound) {
      this.held = false;
      sub.next();
    }
    return inner;
  });
  private bound = true;
  private unbinding: Promise<void> | undefined;

  constructor(
    readonly localPort: number,
    readonly remoteDomid: number,
    readonly remotePort: number,
    private readonly ops: PortOps,
  ) {}

  get isBound(): boolean {
    return this.bound;
  }

  /** A delivery for this port. */
  fire(): void {
    if (!this.bound) return;
    if (this.subject.observed) this.subject.next();
    else this.held = true;
  }

  /** After unbind (or a lost host) notifications are dropped, as for a dead peer. */
  notify(): void {
    if (this.bound) this.ops.notify(this.localPort);
  }

  unmask(): void {
    if (this.bound) this.ops.unmask(this.localPort);
  }

  unbind(): Promise<void> {
    if (!this.unbinding) {
      this.bound = false;
      this.subject.complete();
      this.unbinding = this.ops.unbind(this.localPort);
    }
    return this.unbinding;
  }

  /** The port is gone without an unbind (its host or domain went away). */
  lost(): void {
    if (this.unbinding) return;
    this.bound = false;
    this.subject.complete();
    this.unbinding = Promise.resolve();
  }
}
