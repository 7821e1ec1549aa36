// A statechart drawn as a self-contained SVG (layout by dagre). Every state is a <g class="state"
// data-state="<id>">, so a page highlights the active ones by toggling a class.
import * as dagre from '@dagrejs/dagre';
import type { VizGraph } from './graph';

const CHAR_W = 7;
const FONT = 12;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const TITLE = '::title';

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export function toSvg(graph: VizGraph): string {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 36, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const compound = new Set(graph.nodes.filter((n) => graph.nodes.some((c) => c.parent === n.id)).map((n) => n.id));
  const anchor = (id: string) => (compound.has(id) ? id + TITLE : id);
  for (const n of graph.nodes) {
    const invoke = n.invokes.length ? `invoke: ${n.invokes.join(', ')}` : '';
    const width = Math.max(n.label.length * (CHAR_W + 1), invoke.length * (CHAR_W - 1)) + 24;
    const height = invoke ? 42 : 30;
    if (compound.has(n.id)) {
      g.setNode(n.id, { label: n.label });
      g.setNode(n.id + TITLE, { width, height, label: n.label });
      g.setParent(n.id + TITLE, n.id);
    } else {
      g.setNode(n.id, { width, height, label: n.label });
    }
    if (n.parent) g.setParent(n.id, n.parent);
  }
  // Hidden edges keep a compound state's title above its initial child.
  for (const n of graph.nodes) {
    if (n.initial && n.parent) g.setEdge(n.parent + TITLE, anchor(n.id), { weight: 8, minlen: 1 }, `t:${n.id}`);
  }
  graph.edges.forEach((e, i) => {
    g.setEdge(anchor(e.source), anchor(e.target), { label: e.label, width: e.label.length * CHAR_W, height: FONT + 4, labelpos: 'c' }, `e${i}`);
  });
  dagre.layout(g);

  const parts: string[] = [];
  const { width = 0, height = 0 } = g.graph() as { width?: number; height?: number };
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${esc(graph.machineId)}" ` +
      `viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" width="${Math.ceil(width)}" height="${Math.ceil(height)}" font-family="sans-serif" font-size="${FONT}">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>',
    '<style>.state rect{fill:#f7f7fb;stroke:#667;stroke-width:1.2}.state.cluster>rect{fill:none;stroke:#99a;stroke-dasharray:4 3}' +
      '.state.active>rect{fill:#ffe58a;stroke:#c77c00;stroke-width:2.5}.state.cluster.active>rect{fill:#fff8dc}' +
      '.edge path{fill:none;stroke:#555;stroke-width:1}.edge text{fill:#335}.invoke{fill:#777;font-size:10px}</style>',
  );
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  // Clusters first so that their states draw on top.
  const depth = (id: string): number => (byId.get(id)?.parent ? 1 + depth(byId.get(id)!.parent!) : 0);
  const clusters = [...compound].sort((a, b) => depth(a) - depth(b));
  for (const id of clusters) {
    const b = g.node(id) as Box;
    parts.push(`<g class="state cluster" data-state="${esc(id)}"><rect x="${b.x - b.width / 2}" y="${b.y - b.height / 2}" width="${b.width}" height="${b.height}" rx="10"/></g>`);
  }
  graph.edges.forEach((_, i) => {
    const e = graph.edges[i];
    const ed = g.edge({ v: anchor(e.source), w: anchor(e.target), name: `e${i}` }) as { points: { x: number; y: number }[]; x?: number; y?: number };
    const d = ed.points.map((p, j) => `${j ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join('');
    const text = ed.x !== undefined ? `<text x="${ed.x.toFixed(1)}" y="${(ed.y ?? 0).toFixed(1)}" text-anchor="middle" dominant-baseline="middle">${esc(e.label)}</text>` : '';
    parts.push(`<g class="edge" data-source="${esc(e.source)}" data-target="${esc(e.target)}"><path d="${d}" marker-end="url(#arrow)"/>${text}</g>`);
  });
  for (const n of graph.nodes) {
    const layoutId = compound.has(n.id) ? n.id + TITLE : n.id;
    const b = g.node(layoutId) as Box;
    const cls = compound.has(n.id) ? 'state-title' : `state${n.type === 'final' ? ' final' : ''}`;
    const attrs = compound.has(n.id) ? `data-title-of="${esc(n.id)}"` : `data-state="${esc(n.id)}"`;
    const x = b.x - b.width / 2;
    const y = b.y - b.height / 2;
    const invoke = n.invokes.length ? `<text class="invoke" x="${b.x}" y="${y + 32}" text-anchor="middle">invoke: ${esc(n.invokes.join(', '))}</text>` : '';
    const rectStyle = compound.has(n.id) ? ' style="fill:#eef;stroke:#99a"' : '';
    const ring = n.type === 'final' ? `<rect x="${x + 3}" y="${y + 3}" width="${b.width - 6}" height="${b.height - 6}" rx="6" fill="none"/>` : '';
    const initialDot = n.initial ? `<circle cx="${x - 6}" cy="${b.y}" r="4" fill="#333"/>` : '';
    parts.push(
      `<g class="${cls}" ${attrs}><rect x="${x}" y="${y}" width="${b.width}" height="${b.height}" rx="8"${rectStyle}/>${ring}${initialDot}` +
        `<text x="${b.x}" y="${y + 18}" text-anchor="middle" font-weight="${compound.has(n.id) ? 'bold' : 'normal'}">${esc(n.label)}</text>${invoke}</g>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}
