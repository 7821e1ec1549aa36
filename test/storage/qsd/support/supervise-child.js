// Child process for adopt.test.ts: a stand-in xenblkd that supervises one image's daemon and
// then waits to be killed. argv: state dir, journal file, format, image path.
'use strict';
require('../../../blkif/support/ts-require');
const { FileQsdJournal, QsdSupervisor } = require('../../../../src/io/storage/qsd/index.ts');

async function main() {
  const [dir, journalFile, format, path] = process.argv.slice(2);
  const line = (level) => (a, b) => process.stderr.write(`${level} ${typeof a === 'string' ? a : b}\n`);
  const supervisor = new QsdSupervisor({
    dir,
    journal: new FileQsdJournal(journalFile),
    log: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') },
  });
  const record = await supervisor.ensure({ driver: 'qsd', format, path }, false);
  process.stdout.write(`${JSON.stringify(record)}\n`);
  setInterval(() => {}, 1 << 30);
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
