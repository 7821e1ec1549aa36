// Bad frames from peers (a header announcing an oversized payload, a stream that ends inside a
// frame). Every one is counted (XenstoredServer.stats(), CONTROL stats); a connection logs at
// most one line, and those lines share a token bucket across connections, so a fuzzer or a broken
// guest reconnecting in a loop cannot flood the log. What the bucket holds back is told (field
// `suppressed`) by the next line that goes out, or by a summary line once the bucket has a token
// again or the server closes.
import type { XsLogger } from '../logger';

export type BadFrameKind = 'oversized' | 'partial';

export interface BadFrameCounts {
  /** Bad frames seen, of every kind. */
  badFrames: number;
  oversizedFrames: number;
  partialFrames: number;
  /** Lines the rate limit held back (each was counted in a summary line). */
  badFrameLinesSuppressed: number;
}

export interface BadFrameSource {
  readonly label: string;
  /** Set once this connection logged its bad-frame line. */
  badFrameLogged: boolean;
}

export interface BadFrameLimits {
  /** Lines that may go out at once. */
  burst: number;
  /** Lines per second the bucket refills. */
  perSecond: number;
}

export const DEFAULT_BAD_FRAME_LIMITS: BadFrameLimits = { burst: 10, perSecond: 1 };

const MESSAGES: Record<BadFrameKind, string> = {
  oversized: 'xenstored: oversized frame, closing connection',
  partial: 'xenstored: connection ended inside a frame',
};

export class BadFrameLog {
  private tokens: number;
  private refilledAt: number;
  /** Lines held back since the last summary. */
  private pendingSummary = 0;
  private summaryTimer: NodeJS.Timeout | undefined;
  private readonly counts: BadFrameCounts = { badFrames: 0, oversizedFrames: 0, partialFrames: 0, badFrameLinesSuppressed: 0 };

  constructor(
    private readonly log: XsLogger,
    private readonly limits: BadFrameLimits = DEFAULT_BAD_FRAME_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = limits.burst;
    this.refilledAt = now();
  }

  get stats(): BadFrameCounts {
    return { ...this.counts };
  }

  report(conn: BadFrameSource, kind: BadFrameKind, detail: Record<string, unknown> = {}): void {
    this.counts.badFrames++;
    if (kind === 'oversized') this.counts.oversizedFrames++;
    else this.counts.partialFrames++;
    if (conn.badFrameLogged) return;
    conn.badFrameLogged = true;
    if (this.take()) {
      // A line that goes out carries what was held back before it (no summary line needed).
      const held = this.pendingSummary;
      this.pendingSummary = 0;
      const fields = { conn: conn.label, ...detail, badFrames: this.counts.badFrames };
      this.log.warn(held > 0 ? { ...fields, suppressed: held } : fields, MESSAGES[kind]);
      return;
    }
    this.counts.badFrameLinesSuppressed++;
    this.pendingSummary++;
    this.scheduleSummary();
  }

  /** Logs what is still held back (the server is closing). */
  close(): void {
    if (this.summaryTimer) clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    this.summarize();
  }

  private take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.limits.burst, this.tokens + ((t - this.refilledAt) / 1000) * this.limits.perSecond);
    this.refilledAt = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private scheduleSummary(): void {
    if (this.summaryTimer) return;
    const waitMs = Math.max(0, Math.ceil(((1 - this.tokens) / this.limits.perSecond) * 1000));
    this.summaryTimer = setTimeout(() => {
      this.summaryTimer = undefined;
      if (this.pendingSummary === 0) return;
      if (this.take()) this.summarize();
      else this.scheduleSummary();
    }, waitMs);
    this.summaryTimer.unref();
  }

  private summarize(): void {
    if (this.pendingSummary === 0) return;
    const n = this.pendingSummary;
    this.pendingSummary = 0;
    this.log.warn(
      { suppressed: n, badFrames: this.counts.badFrames },
      `xenstored: ${n} more bad-frame lines suppressed (rate limit); ${this.counts.badFrames} bad frames so far`,
    );
  }
}
