// Publication of one batch of responses, in the order that makes a kill at any instruction
// recoverable (ARCHITECTURE.md, "Exactly-once completion across a daemon crash"): the journal
// record, then the response slots (written from the record: what is published is what was
// journaled), then rsp_prod. republish.ts is the other half, run by the next process.
import type { BackRing } from '../../blkif/back-ring';
import type { CrashHooks } from './crash-points';
import type { PublicationJournal } from './journal';

export class Publisher {
  constructor(
    private readonly ring: BackRing,
    private readonly journal: PublicationJournal,
    private readonly crash: CrashHooks,
    /** The record could not be written (journal.lastError says why); the batch is published anyway. */
    private readonly onJournalFailure: () => void,
  ) {}

  /** Response k of the next batch. */
  set(k: number, idLo: number, idHi: number, operation: number, status: number): void {
    this.journal.setEntry(k, idLo, idHi, operation, status);
  }

  /** Publishes responses 0..n-1 as set, at ring index start (the ring's rsp_prod). Returns whether to notify. */
  publish(start: number, n: number): boolean {
    const ring = this.ring;
    const journal = this.journal;
    const crash = this.crash;
    if (crash.armed) crash.at('before-journal');
    const torn = crash.armed && crash.due('torn-journal');
    // A failed write leaves no valid record: the ring keeps serving, unprotected for this batch only.
    if (!journal.commit(start, n, torn)) this.onJournalFailure();
    if (torn) crash.die('torn-journal');
    if (crash.armed) crash.at('after-journal');
    for (let k = 0; k < n; k++) {
      if (crash.armed) crash.atSlot(k, n);
      ring.writeResponse(start + k, journal.entryIdLo(k), journal.entryIdHi(k), journal.entryOperation(k), journal.entryStatus(k));
    }
    if (crash.armed) crash.at('after-slots');
    const notify = ring.publishResponses(n);
    if (crash.armed) crash.at('after-publish');
    return notify;
  }
}
