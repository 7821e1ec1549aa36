'use strict';
// Writes the run's report: report.json (everything) and report.md (tables for a README).
const fs = require('node:fs');
const path = require('node:path');

function mib(bytes) {
  return bytes === undefined ? '' : `${(bytes / 1048576).toFixed(1)} MiB`;
}

function markdown(r) {
  const out = [];
  out.push(`# Xen harness run: scenario ${r.scenario}`, '');
  out.push(`${r.summary}  `, `wall time ${r.wallSeconds.toFixed(0)} s, finished ${r.finishedAt}`, '');
  out.push('| component | version |', '|---|---|');
  for (const [k, v] of Object.entries(r.versions)) out.push(`| ${k} | ${v} |`);
  if (r.packages) out.push('', `Debian packages: ${r.packages.join(', ')}`);
  out.push('', '| host stage | result | seconds | note |', '|---|---|---|---|');
  for (const s of r.stages) out.push(`| ${s.name} | ${s.status} | ${s.seconds.toFixed(1)} | ${s.detail ?? ''} |`);
  out.push('', '| initramfs | compressed | unpacked | files | cache |', '|---|---|---|---|---|');
  for (const [k, v] of Object.entries(r.initramfs)) {
    out.push(`| ${k} | ${mib(v.bytes)} | ${mib(v.unpackedBytes)} | ${v.files ?? ''} | ${v.hit === undefined ? '' : v.hit ? 'hit' : 'built'} |`);
  }
  out.push('', '| milestone | seconds after QEMU start |', '|---|---|');
  for (const [k, v] of Object.entries(r.milestones)) out.push(`| ${k} | ${v === undefined ? '' : v.toFixed(1)} |`);
  out.push('', '| origin | step | result | seconds | detail |', '|---|---|---|---|---|');
  for (const s of r.steps) {
    const d = (s.detail ?? '').replace(/\|/g, '\\|');
    out.push(`| ${s.origin} | ${s.step} | ${s.status} | ${s.seconds === undefined ? '' : s.seconds.toFixed(2)} | ${d} |`);
  }
  out.push('', '| fact | value |', '|---|---|');
  for (const [k, v] of Object.entries(r.infos)) out.push(`| ${k} | \`${String(v).replace(/\|/g, '\\|')}\` |`);
  return out.join('\n') + '\n';
}

function writeReport(dir, report) {
  fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'report.md'), markdown(report));
}

module.exports = { writeReport, markdown };
