// The dashboard page: one self-contained HTML document (no CDN, no external asset), updated live
// through server-sent events. The statecharts come inline from the server (src/viz SVG); a state
// is highlighted by toggling the class "active" on its <g class="state" data-state="...">.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xenblkd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
*{box-sizing:border-box}
body{font-family:system-ui,"DejaVu Sans",sans-serif;margin:0;background:#eef0f5;color:#1f2433}
header{background:#1f2433;color:#fff;padding:9px 18px;display:flex;gap:22px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0;letter-spacing:.5px}header .item{font-size:13px;opacity:.85}
#store.bad{background:#e5534b;color:#fff;padding:2px 8px;border-radius:4px;opacity:1}
#status.live::before{content:"\\25CF ";color:#4cd07d}#status.down::before{content:"\\25CF ";color:#e5534b}
main{display:flex;gap:14px;padding:14px;align-items:flex-start}
aside{width:270px;flex:none;display:flex;flex-direction:column;gap:14px;position:sticky;top:14px}
.panel{background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 3px #0002}
.panel h3{font-size:13px;margin:0 0 6px;color:#4a5170;text-transform:uppercase;letter-spacing:.6px}
#list .dev{padding:7px 8px;border-radius:6px;cursor:pointer;font-size:13px;display:flex;justify-content:space-between;align-items:center;gap:6px}
#list .dev:hover{background:#f0f3fb}#list .dev.selected{background:#e3e9ff}
#list .dev .rate{color:#667;font-size:11px;text-align:right}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:11px;background:#d9dce6;color:#2a2f40;white-space:nowrap}
.badge.ok{background:#c9f0d6;color:#145c2e}.badge.busy{background:#ffe9b3;color:#7a5200}.badge.bad{background:#ffd3d0;color:#8a1c14}.badge.off{background:#e2e4ea;color:#555}
#recoveries{font-size:12px;max-height:300px;overflow:auto}#recoveries div{padding:3px 0;border-bottom:1px solid #eef}
#cards{flex:1;display:flex;flex-direction:column;gap:14px;min-width:0}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 3px #0002}
.card h2{font-size:16px;margin:0 0 4px;display:flex;gap:10px;align-items:center}.card h2 .image{font-weight:normal;font-size:12px;color:#667}
.facts{font-size:12px;color:#3c4258;margin-bottom:8px}.facts b{font-weight:600}.facts .err{color:#a3241a}
.toolbar{display:flex;gap:6px;align-items:center;font-size:12px;color:#667;margin-bottom:4px}
.toolbar button{font-size:11px;padding:2px 8px;border:1px solid #c8ccd8;background:#f7f8fb;border-radius:4px;cursor:pointer}
.toolbar button.on{background:#dfe6ff;border-color:#8ea2e8}
.svgbox{overflow:auto;max-height:520px;border:1px solid #e4e7ef;border-radius:6px;background:#fff}
.svgbox.fit svg{width:100%;height:auto}
.svgbox svg .state.flash>rect{animation:flash 1.2s ease-out}
@keyframes flash{0%{stroke:#e5534b;stroke-width:5}100%{}}
.row{display:flex;gap:14px;flex-wrap:wrap;margin-top:10px;align-items:flex-start}
.chartbox{flex:none}.legend{font-size:11px;color:#556;display:flex;gap:10px;margin-top:3px}
.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:3px}
.logbox{flex:1;min-width:380px;max-height:260px;overflow:auto}
table{border-collapse:collapse;font-size:12px;width:100%;table-layout:fixed}
th{position:sticky;top:0;background:#f4f5f9;text-align:left;font-weight:600;color:#4a5170}
td,th{padding:3px 6px;border-bottom:1px solid #eef0f5;vertical-align:top}
td.cause{font-family:ui-monospace,"DejaVu Sans Mono",monospace;color:#4d5570;word-break:break-all;font-size:11px}
td.time{color:#889;white-space:nowrap}tr.new td{background:#fff6d6}
.empty{color:#889;font-size:13px;padding:6px}
</style></head>
<body>
<header><h1>xenblkd</h1><span class="item" id="status">connecting…</span><span class="item" id="count"></span><span class="item" id="daemon"></span><span class="item" id="lastrec"></span><span class="item" id="store"></span></header>
<main>
<aside>
  <div class="panel"><h3>Devices</h3><div id="list"><div class="empty">no devices</div></div></div>
  <div class="panel"><h3>Recoveries</h3><div id="recoveries"><div class="empty">none</div></div></div>
</aside>
<section id="cards"></section>
</main>
<script>
"use strict";
const XS = ['Unknown','Initialising','InitWait','Initialised','Connected','Closing','Closed','Reconfiguring','Reconfigured'];
const state = { machines: {}, devices: new Map(), transitions: {}, rates: {}, recoveries: [], selected: null, zoom: {} };
const $ = (s, el) => (el || document).querySelector(s);
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const cardOf = key => document.querySelector('[data-card="' + CSS.escape(key) + '"]');
const xs = n => n === null || n === undefined ? '-' : n + ' ' + (XS[n] || '?');
const time = t => new Date(t).toLocaleTimeString([], { hour12: false }) + '.' + String(t % 1000).padStart(3, '0');
function phaseOf(d) { return (d.summary && d.summary.phase) || (typeof d.value === 'string' ? d.value : JSON.stringify(d.value)); }
function badgeClass(p) { return p === 'attached.connected' ? 'ok' : p === 'failed' ? 'bad' : /closed|destroy/.test(p) ? 'off' : 'busy'; }
function lastRate(key) { const r = state.rates[key]; return r && r.length ? r[r.length - 1] : null; }

function renderList() {
  const list = $('#list');
  $('#count').textContent = state.devices.size + ' device' + (state.devices.size === 1 ? '' : 's');
  if (!state.devices.size) { list.innerHTML = '<div class="empty">no devices</div>'; return; }
  list.innerHTML = '';
  for (const d of state.devices.values()) {
    const p = phaseOf(d), r = lastRate(d.key);
    const el = document.createElement('div');
    el.className = 'dev' + (state.selected === d.key ? ' selected' : '');
    el.dataset.device = d.key;
    el.innerHTML = '<div><b>' + esc(d.key) + '</b><br><span class="badge ' + badgeClass(p) + '">' + esc(p) + '</span></div>' +
      '<div class="rate">' + (r ? r.iops.toFixed(0) + ' IOPS<br>' + (r.readMBps + r.writeMBps).toFixed(1) + ' MB/s' : '') + '</div>';
    el.onclick = () => { state.selected = d.key; renderList(); const c = cardOf(d.key); if (c) c.scrollIntoView({ behavior: 'smooth', block: 'start' }); };
    list.appendChild(el);
  }
}

function card(d) {
  let el = cardOf(d.key);
  if (el) return el;
  el = document.createElement('article');
  el.className = 'card'; el.dataset.card = d.key;
  el.innerHTML = '<h2><span>device ' + esc(d.key) + '</span><span class="badge phase"></span><span class="image"></span></h2><div class="facts"></div>' +
    '<div class="toolbar">statechart <b>' + esc(d.machine) + '</b> · zoom <button data-zoom="fit">fit</button><button data-zoom="0.6">60%</button><button data-zoom="1">100%</button></div>' +
    '<div class="svgbox">' + (state.machines[d.machine] || '') + '</div>' +
    '<div class="row"><div class="chartbox"><canvas width="440" height="150"></canvas>' +
    '<div class="legend"><span><i style="background:#2a9d5c"></i>read MB/s</span><span><i style="background:#d1495b"></i>write MB/s</span><span><i style="background:#3867d6"></i>IOPS</span><span><i style="background:#f0a020"></i>recovery</span></div>' +
    '<div class="facts rate"></div></div>' +
    '<div class="logbox"><table class="log"><colgroup><col style="width:96px"><col style="width:40px"><col style="width:130px"><col><col style="width:140px"></colgroup><thead><tr><th>time</th><th>#</th><th>event</th><th>caused by</th><th>now</th></tr></thead><tbody></tbody></table></div></div>';
  el.dataset.device = d.key;
  for (const b of el.querySelectorAll('[data-zoom]')) b.onclick = () => { state.zoom[d.key] = b.dataset.zoom; applyZoom(d.key); };
  $('#cards').appendChild(el);
  applyZoom(d.key);
  return el;
}

function applyZoom(key) {
  const el = cardOf(key); if (!el) return;
  const z = state.zoom[key] || '1', box = $('.svgbox', el), svg = $('svg', box);
  for (const b of el.querySelectorAll('[data-zoom]')) b.classList.toggle('on', b.dataset.zoom === z);
  box.classList.toggle('fit', z === 'fit');
  if (svg && z !== 'fit') { const w = svg.viewBox.baseVal.width, h = svg.viewBox.baseVal.height; svg.setAttribute('width', w * z); svg.setAttribute('height', h * z); }
  reveal(key);
}

/** Scrolls the statechart so that the active state of the lifecycle is in view. */
function reveal(key) {
  const el = cardOf(key); if (!el) return;
  const box = $('.svgbox', el);
  if (box.classList.contains('fit')) return;
  const leaves = [...box.querySelectorAll('g.state.active:not(.cluster)')];
  const leaf = leaves.find(g => g.dataset.state.includes('.lifecycle.')) || leaves[0];
  if (!leaf) return;
  const b = box.getBoundingClientRect(), r = leaf.getBoundingClientRect();
  if (r.left < b.left || r.right > b.right) box.scrollLeft += r.left - b.left - (b.width - r.width) / 2;
  if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += r.top - b.top - (b.height - r.height) / 2;
}

function highlight(key, ids, flash) {
  const el = cardOf(key); if (!el) return;
  const set = new Set(ids);
  for (const g of el.querySelectorAll('.svgbox g.state')) {
    const on = set.has(g.dataset.state);
    if (flash && on && !g.classList.contains('active')) { g.classList.remove('flash'); void g.getBBox(); g.classList.add('flash'); }
    g.classList.toggle('active', on);
  }
  reveal(key);
}

function renderFacts(d) {
  const el = card(d), s = d.summary || {}, p = phaseOf(d);
  const badge = $('.badge.phase', el); badge.textContent = p; badge.className = 'badge phase ' + badgeClass(p);
  $('.image', el).textContent = s.image || '';
  const c = s.connection;
  $('.facts', el).innerHTML = 'backend <b>' + xs(s.backendState) + '</b> · frontend <b>' + xs(s.frontendState) + '</b> · online <b>' + (s.online ? 'yes' : 'no') + '</b>' +
    (c ? ' · ring order <b>' + c.ringPageOrder + '</b> · ' + esc(c.protocol || '') + ' · event channel <b>' + c.eventChannel + '</b>' : '') +
    (s.lastError ? ' · <span class="err">last error: ' + esc(s.lastError.source + ': ' + s.lastError.message) + '</span>' : '');
}

function renderDevice(d, flash) {
  renderFacts(d);
  highlight(d.key, d.stateIds, flash);
  renderLog(d.key);
  renderChart(d.key);
}

function renderLog(key, fresh) {
  const el = cardOf(key); if (!el) return;
  const rows = (state.transitions[key] || []).slice(-40).reverse();
  $('tbody', el).innerHTML = rows.map((t, i) => '<tr' + (fresh && i === 0 ? ' class="new"' : '') + '><td class="time">' + time(t.at) + '</td><td>' + t.version + '</td><td>' + esc(t.event) +
    '</td><td class="cause">' + esc(t.detail) + '</td><td>' + esc(t.phase || t.to) + '</td></tr>').join('') || '<tr><td colspan="5" class="empty">no transition yet</td></tr>';
}

function renderChart(key) {
  const el = cardOf(key); if (!el) return;
  const c = $('canvas', el), g = c.getContext('2d'), pts = state.rates[key] || [];
  const W = c.width, H = c.height, L = 34, R = 40, T = 8, B = 16;
  g.clearRect(0, 0, W, H);
  g.font = '10px sans-serif'; g.strokeStyle = '#e4e7ef'; g.fillStyle = '#778'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) { const y = T + (H - T - B) * i / 4; g.beginPath(); g.moveTo(L, y); g.lineTo(W - R, y); g.stroke(); }
  const maxMB = Math.max(1, ...pts.map(p => Math.max(p.readMBps, p.writeMBps)));
  const maxIops = Math.max(1, ...pts.map(p => p.iops));
  g.fillText(maxMB.toFixed(maxMB < 10 ? 1 : 0), 2, T + 8); g.fillText('MB/s', 2, T + 20);
  g.textAlign = 'right'; g.fillText(maxIops.toFixed(0), W - 2, T + 8); g.fillText('IOPS', W - 2, T + 20); g.textAlign = 'left';
  if (pts.length) {
    const t0 = pts[0].at;
    const t1 = Math.max(pts[pts.length - 1].at, t0 + 1000, ...state.recoveries.filter(r => r.device === key).map(r => r.at));
    const x = t => L + (W - L - R) * (t - t0) / (t1 - t0);
    const line = (f, max, color, dash) => { g.strokeStyle = color; g.lineWidth = 1.6; g.setLineDash(dash || []); g.beginPath(); pts.forEach((p, i) => { const y = H - B - (H - T - B) * f(p) / max; i ? g.lineTo(x(p.at), y) : g.moveTo(x(p.at), y); }); g.stroke(); g.setLineDash([]); };
    for (const r of state.recoveries) if (r.device === key && r.at >= t0) { g.strokeStyle = '#f0a020'; g.lineWidth = 2; g.beginPath(); g.moveTo(x(r.at), T); g.lineTo(x(r.at), H - B); g.stroke(); }
    line(p => p.readMBps, maxMB, '#2a9d5c'); line(p => p.writeMBps, maxMB, '#d1495b'); line(p => p.iops, maxIops, '#3867d6', [4, 3]);
    g.fillStyle = '#778'; g.fillText(Math.round((t1 - t0) / 1000) + ' s', L, H - 3);
  } else {
    g.fillText('no I/O sampled yet', L + 8, H / 2);
  }
  const last = pts[pts.length - 1];
  $('.rate', el).textContent = last ? last.iops.toFixed(0) + ' IOPS · read ' + last.readMBps.toFixed(1) + ' MB/s · write ' + last.writeMBps.toFixed(1) + ' MB/s · errors ' + last.errors : '';
}

function renderRecoveries() {
  const box = $('#recoveries');
  box.innerHTML = state.recoveries.length ? state.recoveries.slice(-30).reverse().map(r => '<div><span class="badge busy">' + esc(r.device) + '</span> ' + time(r.at) + '<br>' + esc(r.detail) + '</div>').join('') : '<div class="empty">none</div>';
  const last = state.recoveries[state.recoveries.length - 1];
  $('#lastrec').textContent = last ? 'last recovery ' + time(last.at) + ' (' + last.device + ')' : '';
}

function renderStore(st) {
  const el = $('#store');
  if (!st || st.writable) { el.textContent = st ? 'event store writable' : ''; el.className = 'item'; return; }
  const what = st.reason === 'corrupt' ? 'event store corrupt' : 'state folder refuses writes' + (st.code ? ' (' + st.code + ')' : '');
  el.textContent = what + (st.since ? ' since ' + time(st.since) : '') + ': state changes wait' + (st.waiting.length ? ', ' + st.waiting.length + ' new device(s) waiting: ' + st.waiting.join(' ') : '');
  el.title = st.message || '';
  el.className = 'item bad';
}

function setDevices(list) {
  const keys = new Set(list.map(d => d.key));
  for (const k of [...state.devices.keys()]) if (!keys.has(k)) { state.devices.delete(k); const el = cardOf(k); if (el) el.remove(); }
  for (const d of list) { state.devices.set(d.key, d); renderDevice(d, false); }
  renderList();
}

async function load() {
  const r = await fetch('api/state', { cache: 'no-store' }); const s = await r.json();
  state.machines = s.machines;
  // A restarted daemon starts its logs and samples afresh: keep what this page saw before.
  for (const [k, list] of Object.entries(s.transitions)) {
    const first = list.length ? list[0].version : Infinity;
    state.transitions[k] = (state.transitions[k] || []).filter(t => t.version < first).concat(list).slice(-100);
  }
  for (const [k, list] of Object.entries(s.rates)) {
    const first = list.length ? list[0].at : Infinity;
    state.rates[k] = (state.rates[k] || []).filter(p => p.at < first).concat(list).slice(-120);
  }
  const seen = new Set(state.recoveries.map(r => r.device + '@' + r.at));
  state.recoveries = state.recoveries.concat(s.recoveries.filter(r => !seen.has(r.device + '@' + r.at)));
  if (s.daemon) $('#daemon').textContent = 'daemon pid ' + s.daemon.pid + ', up since ' + new Date(s.daemon.startedAt).toLocaleTimeString([], { hour12: false });
  setDevices(s.devices);
  renderRecoveries();
  renderStore(s.store);
}

function connect() {
  const es = new EventSource('api/events');
  es.onopen = () => { $('#status').textContent = 'live'; $('#status').className = 'item live'; load().catch(() => undefined); };
  es.onerror = () => { $('#status').textContent = 'disconnected, retrying…'; $('#status').className = 'item down'; };
  es.addEventListener('transition', e => {
    const t = JSON.parse(e.data);
    const log = state.transitions[t.device] = state.transitions[t.device] || [];
    log.push(t); if (log.length > 100) log.shift();
    if (!t.view) return;
    const known = state.devices.has(t.device);
    state.devices.set(t.device, t.view);
    renderFacts(t.view); highlight(t.device, t.view.stateIds, true); renderLog(t.device, true);
    if (!known) renderChart(t.device);
    renderList();
  });
  es.addEventListener('devices', e => setDevices(JSON.parse(e.data)));
  es.addEventListener('rates', e => {
    for (const p of JSON.parse(e.data)) { const r = state.rates[p.device] = state.rates[p.device] || []; r.push(p); if (r.length > 120) r.shift(); renderChart(p.device); }
    renderList();
  });
  es.addEventListener('store', e => renderStore(JSON.parse(e.data)));
  es.addEventListener('recovery', e => { state.recoveries.push(JSON.parse(e.data)); renderRecoveries(); });
}
connect();
</script></body></html>`;
