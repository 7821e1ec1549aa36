// Holds replies and events back until the changes made before them are on disk (when the tree
// is persisted), so a client never sees an acknowledgement of data a crash could lose. Changes
// are flushed in groups: everything staged during one turn of the event loop goes in one batch.
import type { XsLogger } from '../logger';
import type { ServerConnection } from './connection';
import type { TreePersistence } from './persist';

export class OutputGate {
  private held: [ServerConnection, Buffer][] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;

  constructor(
    private readonly persist: TreePersistence | undefined,
    private readonly log: XsLogger,
  ) {}

  output(conn: ServerConnection, frame: Buffer): void {
    if (!this.persist || (!this.persist.dirty && !this.flushing && this.held.length === 0)) conn.write(frame);
    else this.held.push([conn, frame]);
  }

  /** Called when a change was staged: flush once the current synchronous work is done. */
  changed(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  /** Resolves when nothing is staged or held any more. */
  async drain(): Promise<void> {
    while (this.flushing || this.scheduled) {
      if (this.flushing) await this.flushing;
      else await new Promise<void>((r) => queueMicrotask(r));
    }
  }

  private async flushLoop(): Promise<void> {
    const persist = this.persist!;
    while (persist.dirty) {
      const ready = this.held;
      this.held = [];
      try {
        await persist.flush();
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'xenstored: writing the persistence folder failed; will retry');
        this.held = ready.concat(this.held);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const [c, f] of ready) c.write(f);
    }
    const rest = this.held;
    this.held = [];
    for (const [c, f] of rest) c.write(f);
    this.flushing = undefined;
  }
}
