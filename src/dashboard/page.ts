// The dashboard page: one self-contained HTML document (no CDN, no external asset), updated live
// through server-sent events.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xenblkd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f8;color:#223}
header{background:#223;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0}header .status{font-size:13px;opacity:.8}
main{display:flex;gap:14px;padding:14px;align-items:flex-start}
#list{min-width:230px;background:#fff;border-radius:8px;padding:8px;box-shadow:0 1px 3px #0002}
#list .dev{padding:6px 8px;border-radius:6px;cursor:pointer;font-size:13px}
#list .dev.selected{background:#e6ecff}#list .dev .phase{color:#667;font-size:12px}
#cards{flex:1;display:flex;flex-direction:column;gap:14px;min-width:0}
.card{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 3px #0002}
.card h2{font-size:15px;margin:0 0 8px}.card .facts{font-size:12px;color:#445;margin-bottom:6px}
.row{display:flex;gap:12px;flex-wrap:wrap}.chart{border:1px solid #dde;border-radius:6px}
.svgbox{overflow:auto;max-height:560px;border:1px solid #eef;border-radius:6px}
table{border-collapse:collapse;font-size:12px;width:100%}td,th{padding:2px 6px;border-bottom:1px solid #eef;text-align:left;vertical-align:top}
td.detail{font-family:monospace;color:#556;word-break:break-all}
#recoveries{font-size:12px}.empty{color:#889;font-size:13px}
</style></head>
<body>
<header><h1>xenblkd</h1><span class="status" id="status">connecting…</span><span class="status" id="summary"></span></header>
<main><div id="list"><div class="empty">no devices</div></div><div id="cards"></div></main>
<script>
"use strict";
const state = { machines: {}, devices: new Map(), transitions: {}, rates: {}, recoveries: [], selected: null };
const $ = (s, el) => (el || document).querySelector(s);
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
function phaseOf(d) { return d.summary && d.summary.phase || flat(d.value); }
function flat(v) { if (typeof v === 'string') return v; const a = v && v.active && v.active.lifecycle; return a ? JSON.stringify(a).replace(/[{}"]/g,'').replace(/:/g,'.') : JSON.stringify(v); }
function renderList() {
  const list = $('#list');
  if (!state.devices.size) { list.innerHTML = '<div class="empty">no devices</div>'; return; }
  list.innerHTML = '';
  for (const d of state.devices.values()) {
    const el = document.createElement('div');
    el.className = 'dev' + (state.selected === d.key ? ' selected' : '');
    el.dataset.device = d.key;
    el.innerHTML = '<b>' + esc(d.key) + '</b><div class="phase">' + esc(phaseOf(d)) + '</div>';
    el.onclick = () => { state.selected = d.key; renderList(); $('[data-card="' + d.key + '"]').scrollIntoView(); };
    list.appendChild(el);
  }
  $('#summary').textContent = state.devices.size + ' device(s)';
}
function card(d) {
  let el = $('[data-card="' + d.key + '"]');
  if (!el) {
    el = document.createElement('section');
    el.className = 'card'; el.dataset.card = d.key;
    el.innerHTML = '<h2>device ' + esc(d.key) + '</h2><div class="facts"></div>' +
      '<div class="row"><div class="svgbox" data-device="' + esc(d.key) + '">' + (state.machines[d.machine] || '') + '</div>' +
      '<div><canvas class="chart" width="360" height="120"></canvas><div class="facts rate"></div>' +
      '<table class="log"><thead><tr><th>#</th><th>event</th><th>detail</th><th>to</th></tr></thead><tbody></tbody></table></div></div>';
    $('#cards').appendChild(el);
  }
  return el;
}
function highlight(key, ids) {
  const box = $('[data-device="' + key + '"].svgbox');
  if (!box) return;
  const set = new Set(ids);
  for (const g of box.querySelectorAll('.state')) g.classList.toggle('active', set.has(g.dataset.state));
}
function renderDevice(d) {
  const el = card(d);
  const s = d.summary || {};
  $('.facts', el).textContent = 'backend ' + s.backendState + ' · frontend ' + s.frontendState + ' · online ' + s.online +
    (s.image ? ' · ' + s.image : '') + (s.connection ? ' · ring order ' + s.connection.ringPageOrder + ' ' + s.connection.protocol : '') +
    (s.lastError ? ' · last error: ' + s.lastError.source + ': ' + s.lastError.message : '');
  highlight(d.key, d.stateIds);
  renderLog(d.key);
  renderChart(d.key);
}
function renderLog(key) {
  const el = $('[data-card="' + key + '"]'); if (!el) return;
  const rows = (state.transitions[key] || []).slice(-25).reverse();
  $('tbody', el).innerHTML = rows.map(t => '<tr><td>' + t.version + '</td><td>' + esc(t.event) + '</td><td class="detail">' + esc(t.detail) + '</td><td>' + esc(t.to) + '</td></tr>').join('');
}
function renderChart(key) {
  const el = $('[data-card="' + key + '"]'); if (!el) return;
  const c = $('canvas', el), g = c.getContext('2d'), pts = state.rates[key] || [];
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...pts.map(p => p.readMBps + p.writeMBps));
  const draw = (f, color) => { g.strokeStyle = color; g.beginPath(); pts.forEach((p, i) => { const x = c.width * i / Math.max(1, pts.length - 1), y = c.height - 4 - (c.height - 8) * f(p) / max; i ? g.lineTo(x, y) : g.moveTo(x, y); }); g.stroke(); };
  draw(p => p.readMBps, '#2a7'); draw(p => p.writeMBps, '#c55');
  const last = pts[pts.length - 1];
  $('.rate', el).textContent = last ? (last.iops.toFixed(0) + ' IOPS · read ' + last.readMBps.toFixed(1) + ' MB/s · write ' + last.writeMBps.toFixed(1) + ' MB/s · errors ' + last.errors) : 'no I/O yet';
}
function setDevices(list) {
  const keys = new Set(list.map(d => d.key));
  for (const k of [...state.devices.keys()]) if (!keys.has(k)) { state.devices.delete(k); const el = $('[data-card="' + k + '"]'); if (el) el.remove(); }
  for (const d of list) { state.devices.set(d.key, d); renderDevice(d); }
  renderList();
}
async function load() {
  const r = await fetch('api/state'); const s = await r.json();
  state.machines = s.machines; state.transitions = s.transitions; state.rates = s.rates; state.recoveries = s.recoveries;
  setDevices(s.devices);
}
function connect() {
  const es = new EventSource('api/events');
  es.onopen = () => { $('#status').textContent = 'live'; load(); };
  es.onerror = () => { $('#status').textContent = 'disconnected, retrying…'; };
  es.addEventListener('transition', e => {
    const t = JSON.parse(e.data);
    (state.transitions[t.device] = state.transitions[t.device] || []).push(t);
    const d = state.devices.get(t.device);
    if (d) { d.value = t.to; d.stateIds = t.stateIds; highlight(t.device, t.stateIds); renderLog(t.device); }
  });
  es.addEventListener('devices', e => setDevices(JSON.parse(e.data)));
  es.addEventListener('rates', e => { for (const p of JSON.parse(e.data)) { (state.rates[p.device] = state.rates[p.device] || []).push(p); if (state.rates[p.device].length > 120) state.rates[p.device].shift(); renderChart(p.device); } });
  es.addEventListener('recovery', e => { const r = JSON.parse(e.data); state.recoveries.push(r); $('#status').textContent = 'live · recovered ' + r.device + ' (' + r.detail + ')'; });
}
connect();
</script></body></html>`;
