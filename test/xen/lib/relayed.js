'use strict';
// Recovers the logs dom0 relayed onto the serial console. Live relays print "<origin>| line";
// at the end dom0 prints each relayed file whole between "XENTEST FILE <origin> BEGIN|END" as
// "<origin>|=line". The whole copy wins (live relays may lag); else the live lines are kept.
// Input: the serial log text, with or without the host's "[ seconds] " timestamps.

const LINE_RE = /^(?:\[\s*[\d.]+\] )?([A-Za-z0-9][A-Za-z0-9_.-]*)\|(=?)(.*)$/;
const FILE_RE = /^(?:\[\s*[\d.]+\] )?XENTEST FILE (\S+) BEGIN/;

/** Returns Map(origin -> lines). */
function splitRelayed(text) {
  const live = new Map();
  const whole = new Map();
  for (const l of text.split('\n')) {
    const m = LINE_RE.exec(l.replace(/\r$/, ''));
    if (m) {
      const dumped = m[2] === '=';
      const into = dumped ? whole : live;
      if (!into.has(m[1])) into.set(m[1], []);
      into.get(m[1]).push(dumped ? m[3] : m[3].replace(/^ /, ''));
      continue;
    }
    const f = FILE_RE.exec(l);
    if (f) whole.set(f[1], []);
  }
  for (const [origin, lines] of live) if (!whole.has(origin)) whole.set(origin, lines);
  return whole;
}

module.exports = { splitRelayed };
