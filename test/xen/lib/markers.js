'use strict';
// Parses the serial console of a harness run into step results. Pure: feed lines, read results.
// A line is "<origin>| <text>" when dom0 relays it from another source (a domU console, a
// daemon log), else it comes from dom0 itself. Markers are the lines whose text starts with
// "XENTEST " (see scripts/xen/guest/xentest.sh for the grammar); everything else is log.

const ORIGIN_RE = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\| ?(.*)$/;
const MARKER_RE = /^XENTEST ([A-Z]+)(?: (.*))?$/;
const STEP_RE = /^(\S+) (BEGIN|PASS|FAIL|SKIP)(?: (.*))?$/;
const SECONDS_RE = /^(\d+(?:\.\d+)?)s(?: (.*))?$/;

/** Splits one console line into { origin, text, marker? }. */
function parseLine(raw) {
  const line = raw.replace(/\r/g, '').replace(/\s+$/, '');
  const m = ORIGIN_RE.exec(line);
  const origin = m ? m[1] : 'dom0';
  const text = m ? m[2] : line;
  const mk = MARKER_RE.exec(text);
  if (!mk) return { origin, text };
  const kind = mk[1];
  const rest = mk[2] ?? '';
  const marker = { kind, rest };
  if (kind === 'STEP') {
    const s = STEP_RE.exec(rest);
    if (!s) return { origin, text, marker: { kind: 'BAD', rest } };
    marker.step = s[1];
    marker.event = s[2];
    const tail = s[3] ?? '';
    if (s[2] === 'PASS' || s[2] === 'FAIL') {
      const sec = SECONDS_RE.exec(tail);
      marker.seconds = sec ? Number(sec[1]) : undefined;
      marker.detail = sec ? (sec[2] ?? '') : tail;
    } else {
      marker.detail = tail;
    }
  } else if (kind === 'PLAN') {
    const [n, ...names] = rest.split(/\s+/).filter(Boolean);
    marker.count = Number(n);
    marker.steps = names;
  } else if (kind === 'INFO') {
    const sp = rest.indexOf(' ');
    marker.key = sp < 0 ? rest : rest.slice(0, sp);
    marker.value = sp < 0 ? '' : rest.slice(sp + 1);
  } else if (kind === 'DONE') {
    for (const [, k, v] of rest.matchAll(/(\w+)=(\d+)/g)) marker[k] = Number(v);
  }
  return { origin, text, marker };
}

/** Accumulates markers from every origin; `results()` judges them. */
class RunLog {
  constructor() {
    this.origins = new Map(); // origin -> { plan, steps: Map, order: [], done, boot }
    this.infos = {}; // key -> value (origin-prefixed when not dom0)
    this.heartbeats = 0;
    this.lastHeartbeatAt = undefined;
    this.poweroffAt = undefined;
    this.boots = new Map(); // console origin -> BOOT markers seen
  }

  origin(name) {
    let o = this.origins.get(name);
    if (!o) {
      o = { plan: undefined, steps: new Map(), order: [], done: undefined, bootAt: undefined };
      this.origins.set(name, o);
    }
    return o;
  }

  /** Feeds one line seen at host time `at` (seconds); returns the parsed line. */
  feed(raw, at) {
    const parsed = parseLine(raw);
    const mk = parsed.marker;
    if (!mk) return parsed;
    // a guest that boots again on the same console (restart, re-create) is a new instance
    if (mk.kind === 'BOOT') this.boots.set(parsed.origin, (this.boots.get(parsed.origin) ?? 0) + 1);
    const boots = this.boots.get(parsed.origin) ?? 1;
    if (boots > 1) parsed.origin = `${parsed.origin}#${boots}`;
    const o = this.origin(parsed.origin);
    switch (mk.kind) {
      case 'BOOT':
        o.bootAt ??= at;
        break;
      case 'PLAN':
        o.plan = mk.steps;
        break;
      case 'STEP': {
        let s = o.steps.get(mk.step);
        if (!s) {
          s = { name: mk.step, status: 'RUNNING', detail: '', seconds: undefined, startedAt: at };
          o.steps.set(mk.step, s);
          o.order.push(mk.step);
        }
        if (mk.event === 'BEGIN') s.startedAt = at;
        else {
          s.status = mk.event;
          s.detail = mk.detail;
          s.seconds = mk.seconds;
          s.endedAt = at;
        }
        break;
      }
      case 'INFO':
        this.infos[parsed.origin === 'dom0' ? mk.key : `${parsed.origin}.${mk.key}`] = mk.value;
        break;
      case 'HEARTBEAT':
        this.heartbeats++;
        this.lastHeartbeatAt = at;
        break;
      case 'DONE':
        o.done = mk;
        break;
      case 'POWEROFF':
        if (parsed.origin === 'dom0') this.poweroffAt = at;
        break;
      default:
        break;
    }
    return parsed;
  }

  /**
   * One row per step of every origin, in plan order: PASS, FAIL, SKIP, or FAIL for a step that
   * began and never ended ("stopped here") or was planned and never began ("not reached").
   */
  results() {
    const rows = [];
    for (const [name, o] of this.origins) {
      if (!o.plan && o.order.length === 0) continue;
      const names = [...(o.plan ?? [])];
      for (const n of o.order) if (!names.includes(n)) names.push(n);
      for (const n of names) {
        const s = o.steps.get(n);
        if (!s) rows.push({ origin: name, step: n, status: 'FAIL', detail: 'not reached' });
        else if (s.status === 'RUNNING')
          rows.push({ origin: name, step: n, status: 'FAIL', detail: 'began and never ended (stopped here)' });
        else rows.push({ origin: name, step: n, status: s.status, detail: s.detail, seconds: s.seconds });
      }
    }
    return rows;
  }
}

/** Counts per origin and in total: { perOrigin: Map(origin -> counts), total }. */
function summarize(rows) {
  const perOrigin = new Map();
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const r of rows) {
    let c = perOrigin.get(r.origin);
    if (!c) perOrigin.set(r.origin, (c = { passed: 0, failed: 0, skipped: 0 }));
    const k = r.status === 'PASS' ? 'passed' : r.status === 'SKIP' ? 'skipped' : 'failed';
    c[k]++;
    total[k]++;
  }
  return { perOrigin, total };
}

function countsLine(c) {
  return `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}`;
}

module.exports = { parseLine, RunLog, summarize, countsLine };
