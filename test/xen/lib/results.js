'use strict';
// The results table of a real-xen run, made from the run's report (the facts the guests and
// dom0 printed as XENTEST INFO): docs/real-xen-results.md and the README block between
// <!-- real-xen:begin --> and <!-- real-xen:end -->. Pure apart from the two file writers.
const fs = require('node:fs');

const BEGIN = '<!-- real-xen:begin -->';
const END = '<!-- real-xen:end -->';

/** "reads=1 writes=2" -> { reads: 1, writes: 2 } (numbers only). */
function keyValues(text) {
  const out = {};
  for (const [, k, v] of String(text ?? '').matchAll(/([a-z_]+)=(-?\d+)/g)) out[k] = Number(v);
  return out;
}

/** The leading integer of a fact ("12 regions, ..." -> 12), or undefined. */
function leadingNumber(text) {
  const m = /^\s*(-?\d+)/.exec(String(text ?? ''));
  return m ? Number(m[1]) : undefined;
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The guests of a run (origins such as domu1, domu2) that reported facts, in order. */
function guestsOf(infos) {
  const names = new Set();
  for (const k of Object.keys(infos)) {
    const m = /^(domu\d+)\./.exec(k);
    if (m) names.add(m[1]);
  }
  return [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

/** "16-page ring, 128 segments per request, persistent grants on" from a guest's facts. */
function ringOf(infos, guest) {
  const order = infos[`${guest}.domu-ring-page-order`];
  if (order === undefined) return undefined;
  const persistent = infos[`${guest}.domu-feature-persistent`] === '1' ? 'on' : 'off';
  return `${1 << Number(order)}-page ring, ${infos[`${guest}.domu-max-segments`]} segments per request, persistent grants ${persistent}`;
}

/**
 * "kill-1, kill-2: domu1 (1-page ring, ...); kill-3: domu2 (16-page ring, ...)": the guest a
 * kill's fact names first, with the ring its blkfront negotiated.
 */
function killsByRing(kills, ring) {
  const groups = new Map();
  for (const [k, fact] of kills) {
    const guest = /^(domu\d+)\b/.exec(String(fact ?? ''))?.[1] ?? '?';
    if (!groups.has(guest)) groups.set(guest, []);
    groups.get(guest).push(k);
  }
  if (groups.size === 0) return undefined;
  return [...groups].map(([guest, ks]) => `${ks.join(', ')}: ${guest}${ring(guest) ? ` (${ring(guest)})` : ''}`).join('; ');
}

/**
 * The qcow2 disk (served through qemu-storage-daemon): attach, the guest's workload on it, the
 * storage daemon adopted across the kill, detach, `qemu-img check` and dom0's check of its data.
 */
function qcow2Row(infos) {
  if (infos['qcow2-attach-seconds'] === undefined) return undefined;
  const parts = [`xenblkd attach ${infos['qcow2-attach-seconds']} s`];
  const fresh = Object.keys(infos)
    .map((k) => /^(domu\d+)\.domu-(xvd[b-z])-fresh-bytes-verified$/.exec(k))
    .find(Boolean);
  if (fresh) {
    const [key, guest, vdev] = fresh;
    parts[0] = `${guest} ${vdev}: ${parts[0]}`;
    const read = leadingNumber(infos[`${guest}.domu-${vdev}-bytes-verified`]);
    parts.push(`${mib(leadingNumber(infos[key]))} of fresh data verified${read === undefined ? '' : ` (${mib(read)} read back)`}`);
  }
  if (infos['qcow2-storage-daemon-adopted'] !== undefined) parts.push(`qemu-storage-daemon ${infos['qcow2-storage-daemon-adopted']}`);
  if (infos['qcow2-detach-seconds'] !== undefined) parts.push(`xenblkd detach ${infos['qcow2-detach-seconds']} s, its storage daemon stopped`);
  if (infos['qcow2-check'] !== undefined) parts.push(`qemu-img check: ${String(infos['qcow2-check']).trim()}`);
  if (infos['image-check-qcow2'] !== undefined) parts.push(`${infos['image-check-qcow2']} checked again in the image from dom0`);
  return parts.join('; ');
}

function stepCounts(steps) {
  const c = { passed: 0, failed: 0, skipped: 0 };
  for (const s of steps) c[s.status === 'PASS' ? 'passed' : s.status === 'SKIP' ? 'skipped' : 'failed']++;
  return c;
}

/**
 * Rows [what, value] of the results table. report: { infos, steps, versions, wallSeconds,
 * finishedAt, scenario } as test/xen/run.js writes it.
 */
function resultRows(report) {
  const infos = report.infos ?? {};
  const guests = guestsOf(infos);
  const g = (guest, key) => infos[`${guest}.${key}`];
  const rows = [];
  const c = stepCounts(report.steps ?? []);
  rows.push(['result', `${c.failed === 0 && c.passed > 0 ? 'PASS' : 'FAIL'}: ${c.passed} steps passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}`]);

  const ops = guests
    .map((d) => {
      const s = keyValues(g(d, 'domu-blockstat-workload'));
      if (s.reads === undefined) return undefined;
      return `${d}: ${s.reads} reads, ${s.writes} writes, ${s.flushes ?? 0} flushes, ${s.discards ?? 0} discards`;
    })
    .filter(Boolean);
  if (ops.length) rows.push(['operations (guest block layer, during the workload)', ops.join('; ')]);
  const answered = keyValues(infos['xenblkd-ops']);
  if (answered.read !== undefined) {
    const bytes = keyValues(infos['xenblkd-bytes']);
    rows.push([
      'requests answered by xenblkd',
      `${answered.read} read, ${answered.write} write, ${answered.flush} flush, ${answered.discard} discard, ${answered.error} with an error` +
        (bytes.read !== undefined ? ` (${mib(bytes.read)} read, ${mib(bytes.written)} written)` : '') +
        ` over ${infos['xenblkd-starts'] ?? '?'} daemon starts, counted up to the last scrape before each kill`,
    ]);
  }

  const rings = guests
    .map((d) => {
      const ring = ringOf(infos, d);
      return ring && `${d}: ${ring}`;
    })
    .filter(Boolean);
  if (rings.length) rows.push(['rings (blkfront)', rings.join('; ')]);

  let verified = 0;
  const perGuest = [];
  for (const d of guests) {
    const b = leadingNumber(g(d, 'domu-bytes-verified'));
    if (b === undefined) continue;
    verified += b;
    perGuest.push(`${d} ${mib(b)}`);
  }
  if (perGuest.length) {
    const image = Object.keys(infos)
      .filter((k) => k.startsWith('image-check-') && k !== 'image-check-qcow2')
      .map((k) => /(\d+) bytes/.exec(infos[k]))
      .filter(Boolean)
      .reduce((s, m) => s + Number(m[1]), 0);
    rows.push([
      'bytes verified (sha256, read back with O_DIRECT)',
      `${mib(verified)} in the guests (${perGuest.join(', ')})${image ? `; ${mib(image)} checked again in the image file from dom0` : ''}`,
    ]);
  }

  let fresh = 0;
  const freshPerGuest = [];
  for (const d of guests) {
    const b = leadingNumber(g(d, 'domu-fresh-bytes-verified'));
    if (b === undefined) continue;
    fresh += b;
    freshPerGuest.push(`${d} ${mib(b)}`);
  }
  if (freshPerGuest.length) {
    rows.push([
      'fresh data verified across the kills (new random data per write, read back with O_DIRECT, sha256)',
      `${mib(fresh)} (${freshPerGuest.join(', ')})`,
    ]);
  }

  const kills = Object.keys(infos)
    .filter((k) => /^kill-\d+$/.test(k))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  if (infos['xenblkd-kills'] !== undefined || kills.length) {
    const detail = kills.map((k) => `${k}: ${infos[k]}`).join('; ');
    rows.push(['SIGKILLs survived (guest I/O going on, no I/O error)', `${infos['xenblkd-kills'] ?? kills.length}${detail ? ` (${detail})` : ''}`]);
    const byRing = killsByRing(kills.map((k) => [k, infos[k]]), (d) => ringOf(infos, d));
    if (byRing) rows.push(['kills by ring', byRing]);
  }
  if (infos['xenblkd-log'] !== undefined) rows.push(['daemon log (every error line allow-listed for its step, else the step fails)', infos['xenblkd-log']]);
  const stalls = guests
    .map((d) => (g(d, 'domu-longest-stall-ms') === undefined ? undefined : `${d} ${g(d, 'domu-longest-stall-ms')} ms`))
    .filter(Boolean);
  if (stalls.length) rows.push(["guest's longest I/O stall (4 KiB O_DIRECT probe reads, timed in the guest)", stalls.join(', ')]);

  const plug = [];
  if (infos['detach-seconds'] !== undefined) plug.push(`xenblkd detach ${infos['detach-seconds']} s`);
  if (infos['attach-seconds'] !== undefined) plug.push(`xenblkd attach ${infos['attach-seconds']} s`);
  const afterAttach = guests.map((d) => g(d, 'domu-verified-after-attach')).find((v) => v !== undefined);
  if (afterAttach) plug.push(`then ${afterAttach} read back unchanged`);
  if (plug.length) rows.push(['unplug and replug in a running guest', plug.join(', ')]);
  const previous = guests.map((d) => [d, g(d, 'domu-verified-previous')]).find(([, v]) => v !== undefined);
  if (previous) rows.push(['reconnect (a new domU on the same disk)', `${previous[0]} found the previous guest's data: ${previous[1]}`]);
  const qcow2 = qcow2Row(infos);
  if (qcow2) rows.push(['qcow2 disk through qemu-storage-daemon (plugged into a running guest)', qcow2]);

  const v = report.versions ?? {};
  rows.push(['versions', `Xen ${v.xen ?? '?'}, Linux ${v.linux ?? '?'} (dom0 and domU), ${v.qemu ?? 'QEMU ?'}, Node ${v.node ?? '?'}`]);
  if (report.wallSeconds !== undefined) rows.push(['wall time', `${report.wallSeconds.toFixed(0)} s (scenario ${report.scenario})`]);
  return rows;
}

function tableOf(rows) {
  const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return ['| what | result |', '|---|---|', ...rows.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`)].join('\n');
}

function resultsMarkdown(report) {
  return [
    '# xenblkd on a real Xen',
    '',
    `Generated by \`npm run test:xen\` (test/xen/lib/results.js) from the run that finished ${report.finishedAt ?? '?'}; do not edit by hand.`,
    'Xen and a PV dom0 run under QEMU (TCG); the domUs use Linux\'s own xen-blkfront; xenblkd serves their disk',
    'through the real xenstored, /dev/xen/gntdev and /dev/xen/evtchn. See scripts/xen/README.md.',
    '',
    tableOf(resultRows(report)),
    '',
  ].join('\n');
}

/** The README with its real-xen block replaced; null when the markers are missing. */
function replaceBlock(readme, block) {
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b < 0 || e < b) return null;
  return `${readme.slice(0, b + BEGIN.length)}\n${block.trim()}\n${readme.slice(e)}`;
}

function readmeBlock(report) {
  return [
    `Last real-Xen run (\`npm run test:xen\`, ${report.finishedAt ?? '?'}; generated, see docs/real-xen-results.md):`,
    '',
    tableOf(resultRows(report)),
  ].join('\n');
}

/** Writes docs file and README block; returns what it did, for the run's output. */
function writeResults(report, { docsFile, readmeFile }) {
  fs.writeFileSync(docsFile, resultsMarkdown(report));
  const done = [`wrote ${docsFile}`];
  const readme = fs.existsSync(readmeFile) ? fs.readFileSync(readmeFile, 'utf8') : null;
  const updated = readme === null ? null : replaceBlock(readme, readmeBlock(report));
  if (updated === null) done.push(`${readmeFile} has no ${BEGIN} ... ${END} block: left alone`);
  else if (updated !== readme) {
    fs.writeFileSync(readmeFile, updated);
    done.push(`updated the results block in ${readmeFile}`);
  }
  return done;
}

module.exports = { BEGIN, END, resultRows, resultsMarkdown, replaceBlock, readmeBlock, writeResults, keyValues };
