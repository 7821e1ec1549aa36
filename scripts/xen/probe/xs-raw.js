'use strict';
// usage: node xs-raw.js SOCKET read PATH | directory PATH
// Reads xenstore through xenstored's unix socket with raw framing (see xs-wire.js).
const { connect } = require('./xs-wire');

async function main([socketPath, op, path]) {
  if (!socketPath || !['read', 'directory'].includes(op) || !path) {
    process.stderr.write('usage: xs-raw.js SOCKET read|directory PATH\n');
    return 2;
  }
  const xs = await connect(socketPath);
  try {
    const out = op === 'read' ? await xs.read(path) : (await xs.directory(path)).join(' ');
    process.stdout.write(out + '\n');
    return 0;
  } finally {
    xs.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`xs-raw: ${err.message}\n`);
    process.exitCode = 1;
  },
);
