// A statechart drawn as a self-contained SVG. Every state is a <g class="state" data-state="<id>">
// (compound ones also "cluster"), so that a page highlights the active ones by toggling a class.
import type { VizGraph } from './graph';
import { FONT, LABEL_FONT, type LaidEdge, type Point, invokeText, layoutGraph, textWidth } from './layout';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n1 = (x: number) => (Math.round(x * 10) / 10).toString();
const CAPTION_H = 22;

const STYLE =
  '.state>rect{fill:#f7f8fc;stroke:#6a6f85;stroke-width:1.2}' +
  '.state.cluster>rect{fill:#fcfcfe;stroke:#9aa0b8}' +
  '.state.cluster.region>rect{fill:none;stroke-dasharray:5 3}' +
  '.state.final>rect.ring{fill:none}' +
  '.state.active>rect{fill:#ffe58a;stroke:#c77c00;stroke-width:2.5}' +
  '.state.cluster.active>rect{fill:#fffdf4;stroke:#d89a2a;stroke-width:2}' +
  '.state.cluster.region.active>rect{fill:none}' +
  '.head{font-weight:bold}.invoke{fill:#6a6f85;font-size:10px}.handler{fill:#2c3a66;font-size:' + LABEL_FONT + 'px}' +
  '.edge path{fill:none;stroke:#59607a;stroke-width:1.1}.edge.initial path{stroke:#222}' +
  '.label rect{fill:#fff;fill-opacity:.85}.label text{fill:#2c3a66;font-size:' + LABEL_FONT + 'px}' +
  '.caption{font-weight:bold;font-size:14px;fill:#223}';

/** A B-spline through dagre's control points (as d3's curveBasis), ending exactly at the last. */
function curve(points: readonly Point[]): string {
  if (points.length < 3) return points.map((p, i) => `${i ? 'L' : 'M'}${n1(p.x)},${n1(p.y)}`).join('');
  let d = `M${n1(points[0].x)},${n1(points[0].y)}`;
  let [x0, y0, x1, y1] = [points[0].x, points[0].y, points[0].x, points[0].y];
  const bez = (x: number, y: number) => {
    d += `C${n1((2 * x0 + x1) / 3)},${n1((2 * y0 + y1) / 3)} ${n1((x0 + 2 * x1) / 3)},${n1((y0 + 2 * y1) / 3)} ${n1((x0 + 4 * x1 + x) / 6)},${n1((y0 + 4 * y1 + y) / 6)}`;
  };
  points.slice(1).forEach((p, i) => {
    if (i === 1) d += `L${n1((5 * x0 + x1) / 6)},${n1((5 * y0 + y1) / 6)}`;
    if (i >= 1) bez(p.x, p.y);
    [x0, y0, x1, y1] = [x1, y1, p.x, p.y];
  });
  bez(x1, y1);
  return d + `L${n1(x1)},${n1(y1)}`;
}

function edgeSvg(e: LaidEdge): string {
  const cls = e.initial ? 'edge initial' : 'edge';
  const start = e.initial ? `<circle cx="${n1(e.points[0].x)}" cy="${n1(e.points[0].y)}" r="3.5" fill="#222"/>` : '';
  return `<g class="${cls}" data-source="${esc(e.source)}" data-target="${esc(e.target)}"><path d="${curve(e.points)}" marker-end="url(#arrow)"/>${start}</g>`;
}

function labelSvg(e: LaidEdge): string {
  if (!e.labelAt || e.lines.length === 0) return '';
  const h = e.lines.length * 13;
  const w = Math.max(...e.lines.map((l) => textWidth(l, 'label'))) + 6;
  const top = e.labelAt.y - h / 2;
  const spans = e.lines.map((l, i) => `<tspan x="${n1(e.labelAt!.x - w / 2 + 3)}" y="${n1(top + 10 + i * 13)}" xml:space="preserve">${esc(l)}</tspan>`).join('');
  return `<g class="label" data-source="${esc(e.source)}" data-target="${esc(e.target)}"><rect x="${n1(e.labelAt.x - w / 2)}" y="${n1(top)}" width="${n1(w)}" height="${h}" rx="3"/><text>${spans}</text></g>`;
}

export function toSvg(graph: VizGraph): string {
  const layout = layoutGraph(graph);
  const width = Math.ceil(layout.width);
  const height = Math.ceil(layout.height + CAPTION_H);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${esc(graph.machineId)}" ` +
      `viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="${FONT}">`,
    `<title>${esc(graph.machineId)} statechart</title>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#59607a"/></marker></defs>',
    `<style>${STYLE}</style>`,
    `<text class="caption" x="8" y="16">${esc(graph.machineId)}</text>`,
    `<g transform="translate(0,${CAPTION_H})">`,
  ];
  const byDepth = [...layout.states.values()].sort((a, b) => a.node.id.split('.').length - b.node.id.split('.').length);
  const parentType = new Map(graph.nodes.map((n) => [n.id, n.type]));
  // Compound states first, outermost first; then arrows; then simple states; labels on top.
  for (const s of byDepth.filter((s) => s.container)) {
    const { rect: r, node } = s;
    const region = node.parent !== undefined && parentType.get(node.parent) === 'parallel';
    const head = s.head!;
    const invoke = invokeText(node);
    const tag = node.type === 'parallel' ? ' \u2016' : '';
    parts.push(
      `<g class="state cluster${region ? ' region' : ''}" data-state="${esc(node.id)}"><rect x="${n1(r.x)}" y="${n1(r.y)}" width="${n1(r.width)}" height="${n1(r.height)}" rx="10"/>` +
        `<text class="head" x="${n1(head.x + head.width / 2)}" y="${n1(head.y + 15)}" text-anchor="middle">${esc(node.label + tag)}</text>` +
        [invoke, ...s.handlers.map((h) => h.text)]
          .filter((l) => l)
          .map((l, i) => `<text class="${i === 0 && invoke ? 'invoke' : 'handler'}" x="${n1(head.x + head.width / 2)}" y="${n1(head.y + 28 + i * 13)}" text-anchor="middle">${esc(l)}</text>`)
          .join('') +
        '</g>',
    );
  }
  for (const e of layout.edges) parts.push(edgeSvg(e));
  for (const s of byDepth.filter((s) => !s.container)) {
    const { rect: r, node } = s;
    const invoke = invokeText(node);
    const ring = node.type === 'final' ? `<rect class="ring" x="${n1(r.x + 3)}" y="${n1(r.y + 3)}" width="${n1(r.width - 6)}" height="${n1(r.height - 6)}" rx="6"/>` : '';
    parts.push(
      `<g class="state${node.type === 'final' ? ' final' : ''}" data-state="${esc(node.id)}"><rect x="${n1(r.x)}" y="${n1(r.y)}" width="${n1(r.width)}" height="${n1(r.height)}" rx="8"/>${ring}` +
        `<text x="${n1(r.x + r.width / 2)}" y="${n1(r.y + 18)}" text-anchor="middle">${esc(node.label)}</text>` +
        (invoke ? `<text class="invoke" x="${n1(r.x + r.width / 2)}" y="${n1(r.y + 32)}" text-anchor="middle">${esc(invoke)}</text>` : '') +
        '</g>',
    );
  }
  for (const e of layout.edges) parts.push(labelSvg(e));
  parts.push('</g>', '</svg>');
  return parts.join('\n') + '\n';
}
