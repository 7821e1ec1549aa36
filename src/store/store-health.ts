// Whether the event store can be written now: the fault that stops it (once, when it starts), and
// how many writes failed. The daemon logs its changes; metrics, `xenblkd ls` and the dashboard show it.
import type { StoreError } from './events';

export interface StoreFault {
  readonly reason: 'io' | 'corrupt';
  /** The errno name when the system said one (ENOSPC, EROFS, EACCES, EIO, ...). */
  readonly code?: string;
  readonly message: string;
  /** Milliseconds since the epoch. */
  readonly since: number;
}

export type HealthListener = (fault: StoreFault | undefined, previous: StoreFault | undefined) => void;

export class StoreHealth {
  private current: StoreFault | undefined;
  private readonly listeners = new Set<HealthListener>();
  /** Writes (batches, reopen attempts) that failed since the store was opened. */
  failedWrites = 0;

  get fault(): StoreFault | undefined {
    return this.current;
  }

  get writable(): boolean {
    return this.current === undefined;
  }

  /** A write failed: counted every time, reported to listeners only when the fault starts or changes kind. */
  failed(err: StoreError, now = Date.now()): void {
    this.failedWrites += 1;
    const reason = err.reason === 'corrupt' ? 'corrupt' : 'io';
    const prev = this.current;
    if (prev && prev.reason === reason && prev.code === err.code) return;
    this.current = { reason, code: err.code, message: err.message, since: prev?.since ?? now };
    this.emit(prev);
  }

  /** A write landed. */
  recovered(): void {
    const prev = this.current;
    if (!prev) return;
    this.current = undefined;
    this.emit(prev);
  }

  onChange(listener: HealthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(prev: StoreFault | undefined): void {
    for (const l of this.listeners) l(this.current, prev);
  }
}
