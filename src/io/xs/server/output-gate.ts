// Holds replies and events back until the changes made before them are on disk (when the tree
// is persisted), so a client never sees an acknowledgement of data a crash could lose. Changes
// are flushed in groups: everything staged during one turn of the event loop goes in one batch,
// and each connection's output is released up to where it stood when that batch was started.
import type { XsLogger } from '../logger';
import type { ServerConnection } from './connection';

/** What the gate needs of the persistence (TreePersistence). */
export interface StagedWrites {
  readonly dirty: boolean;
  /** Writes everything staged so far; rejects (keeping it staged) on failure. */
  flush(): Promise<void>;
}

export class OutputGate {
  /** Connections with output that must wait for the next flush. */
  private waiting = new Set<ServerConnection>();
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private failing = false;

  constructor(
    private readonly persist: StagedWrites | undefined,
    private readonly log: XsLogger,
  ) {}

  /** A frame was queued on conn at output position `at`. */
  queued(conn: ServerConnection, at: number): void {
    if (!this.persist || (!this.persist.dirty && !this.flushing)) {
      conn.scheduleFlush();
      return;
    }
    // Hold this frame and everything after it; what came before may still leave.
    if (conn.heldFrom === undefined) conn.heldFrom = at;
    this.waiting.add(conn);
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
      const marks = [...this.waiting].map((c) => [c, c.outputPosition] as const);
      this.waiting.clear();
      try {
        await persist.flush();
        this.failing = false;
      } catch (e) {
        if (!this.failing) this.log.error({ err: (e as Error).message }, 'xenstored: writing the persistence folder failed; retrying');
        this.failing = true;
        for (const [c] of marks) this.waiting.add(c);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const [c, position] of marks) {
        c.flushUpTo(position);
        // Output queued during the flush stays held, from where this release stopped.
        c.heldFrom = this.waiting.has(c) ? position : undefined;
      }
    }
    for (const c of this.waiting) {
      c.heldFrom = undefined;
      c.flushUpTo();
    }
    this.waiting.clear();
    this.flushing = undefined;
  }
}
