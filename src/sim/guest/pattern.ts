// What a verified block holds: every 512-byte sector's content follows from its address and the
// generation of the write that produced it, so a read is checked without keeping any data.
// Words 0..3: sector (low, high), generation, a tag; words 4..127: a xorshift stream seeded by
// all three.

const WORDS = 128;
const TAG = 0x5842_4c4b; // "XBLK"

function seedOf(sector: number, gen: number): number {
  let x = Math.imul((sector >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(gen ^ 0x7f4a7c15, 0xc2b2ae35);
  x ^= Math.floor(sector / 0x100000000);
  return x || 0x1234567;
}

/** Fills the sector at byte offset `off` of a page (given as u32 words) for (sector, gen). */
export function fillSector(words: Uint32Array, off: number, sector: number, gen: number): void {
  const w = off >>> 2;
  words[w] = sector >>> 0;
  words[w + 1] = Math.floor(sector / 0x100000000);
  words[w + 2] = gen;
  words[w + 3] = TAG;
  let x = seedOf(sector, gen);
  for (let i = 4; i < WORDS; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[w + i] = x;
  }
}

/** True when the sector holds exactly the content of (sector, gen). */
export function checkSector(words: Uint32Array, off: number, sector: number, gen: number): boolean {
  const w = off >>> 2;
  if (words[w] !== sector >>> 0 || words[w + 1] !== Math.floor(sector / 0x100000000) || words[w + 2] !== gen || words[w + 3] !== TAG) {
    return false;
  }
  let x = seedOf(sector, gen);
  for (let i = 4; i < WORDS; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if (words[w + i] !== x >>> 0) return false;
  }
  return true;
}

export function isZeroSector(words: Uint32Array, off: number): boolean {
  const w = off >>> 2;
  for (let i = 0; i < WORDS; i++) if (words[w + i] !== 0) return false;
  return true;
}

/** One line about what a mismatching sector holds (its header words), for reports. */
export function describeSector(words: Uint32Array, off: number): string {
  const w = off >>> 2;
  if (isZeroSector(words, off)) return 'zeros';
  if (words[w + 3] !== TAG) return `foreign data (${words[w].toString(16)} ${words[w + 1].toString(16)} ...)`;
  return `sector ${words[w + 1] * 0x100000000 + words[w]} generation ${words[w + 2]}`;
}
