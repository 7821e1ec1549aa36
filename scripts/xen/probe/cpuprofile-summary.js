'use strict';
// Summarizes a V8 .cpuprofile (node --cpu-prof): wall span, and where the samples fell, by
// source file and by function (self time), so a slow start in dom0 can be explained.
const fs = require('node:fs');

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const selfUs = new Map();
p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const byFile = new Map();
const byFn = new Map();
for (const n of p.nodes) {
  const us = selfUs.get(n.id) ?? 0;
  if (!us) continue;
  const f = n.callFrame.url ? n.callFrame.url.replace(/^.*\/opt\/xenblkd\//, '') : `(${n.callFrame.functionName || 'native'})`;
  byFile.set(f, (byFile.get(f) ?? 0) + us);
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${f}:${n.callFrame.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + us);
}
const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
console.log(`profile span ${ms(p.endTime - p.startTime)}, ${p.samples.length} samples`);
console.log('by file (self):');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${k}`);
console.log('by function (self):');
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${k}`);
