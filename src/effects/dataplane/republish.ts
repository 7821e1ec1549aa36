// Recovery of a publication a killed predecessor left half done (ARCHITECTURE.md, "Exactly-once
// completion across a daemon crash"): the journal's record against the shared rsp_prod.
import { unpublishedTail, type BackRing } from '../../blkif/back-ring';
import type { PublicationJournal } from './journal';

/**
 * Publishes again the tail of the journaled batch that the shared rsp_prod does not cover (the
 * predecessor died between writing slots and advancing rsp_prod). Returns how many.
 */
export function republish(ring: BackRing, journal: PublicationJournal): number {
  const rec = journal.recorded();
  if (rec === null) return 0;
  const at = ring.rspProdPvt;
  const tail = unpublishedTail(rec.start, rec.count, at);
  if (tail === 0) return 0;
  const first = rec.count - tail;
  ring.markConsumed(tail);
  for (let k = 0; k < tail; k++) {
    const e = first + k;
    ring.writeResponse(at + k, journal.entryIdLo(e), journal.entryIdHi(e), journal.entryOperation(e), journal.entryStatus(e));
  }
  ring.publishResponses(tail);
  return tail;
}
