// Second step of an indirect request: its segment descriptors live in pages the frontend
// granted (512 descriptors of 8 bytes per page, the same in every ABI). The dataplane copies
// (or maps) those pages; this decodes them once into the request and validates the result.
import { SEGMENT_SIZE } from './constants';
import { BlkifRequestError } from './errors';
import { checkSegmentsAndRange, type BlkifDeviceLimits, type BlkifRequest } from './request';

/**
 * Decodes req.nrSegments descriptors from `pages` (the indirect pages back to back, at least
 * nrSegments * 8 bytes) into req, then checks them and the sector range. Each byte is read once.
 */
export function parseIndirectSegments(
  pages: Uint8Array,
  req: BlkifRequest,
  limits: BlkifDeviceLimits,
): BlkifRequestError | null {
  const nr = req.nrSegments;
  if (!req.indirect) throw new TypeError('parseIndirectSegments on a direct request');
  if (pages.byteLength < nr * SEGMENT_SIZE) {
    return new BlkifRequestError('short-indirect-pages', `${pages.byteLength} bytes for ${nr} segments`);
  }
  for (let i = 0, o = 0; i < nr; i++, o += SEGMENT_SIZE) {
    req.segGref[i] = (pages[o] | (pages[o + 1] << 8) | (pages[o + 2] << 16) | (pages[o + 3] << 24)) >>> 0;
    req.segFirst[i] = pages[o + 4];
    req.segLast[i] = pages[o + 5];
  }
  const err = checkSegmentsAndRange(req, limits);
  if (err === null) req.segmentsReady = true;
  return err;
}

/** Writes segment descriptors into indirect pages (what a frontend does). */
export function encodeIndirectSegments(
  pages: Uint8Array,
  grefs: ArrayLike<number>,
  first: ArrayLike<number>,
  last: ArrayLike<number>,
  count: number,
): void {
  if (pages.byteLength < count * SEGMENT_SIZE) throw new RangeError(`${count} segments need ${count * SEGMENT_SIZE} bytes`);
  for (let i = 0, o = 0; i < count; i++, o += SEGMENT_SIZE) {
    const g = grefs[i] >>> 0;
    pages[o] = g & 0xff;
    pages[o + 1] = (g >>> 8) & 0xff;
    pages[o + 2] = (g >>> 16) & 0xff;
    pages[o + 3] = g >>> 24;
    pages[o + 4] = first[i];
    pages[o + 5] = last[i];
    pages[o + 6] = 0;
    pages[o + 7] = 0;
  }
}
