// Child process for raw.test.ts: opens an image in the directory given (a ramfs mounted in a
// private mount namespace), writes and reads it back, and prints what the engine reported.
'use strict';
require('../../blkif/support/ts-require');
const fs = require('node:fs');
const path = require('node:path');
const { openRawImage } = require('../../../src/io/storage/raw.ts');

async function main() {
  const p = path.join(process.argv[2], 'ram.img');
  fs.writeFileSync(p, Buffer.alloc(65536, 0x11));
  const img = await openRawImage(p);
  const data = Buffer.alloc(4096, 0x5c);
  const back = Buffer.alloc(4096);
  const wrote = await new Promise((r) => img.write(data, 0, 4096, 8192, r));
  const read = await new Promise((r) => img.read(back, 0, 4096, 8192, r));
  const discard = await new Promise((r) => img.discard(0, 4096, false, r));
  const fsType = require('node:child_process').execFileSync('stat', ['-f', '-c', '%T', p], { encoding: 'utf8' }).trim();
  process.stdout.write(
    JSON.stringify({
      fsType,
      direct: img.direct,
      directFallback: img.directFallback,
      discardSupport: img.discardSupport,
      discardNote: img.discardNote,
      wrote: wrote && wrote.code,
      read: read && read.code,
      same: back.equals(data) && fs.readFileSync(p).subarray(8192, 12288).equals(data),
      discard: discard && discard.code,
    }),
  );
  await img.close();
}

main().catch((e) => {
  process.stderr.write(String(e && e.message));
  process.exit(1);
});
