// Geometry of a statechart drawing. Each compound state is laid out on its own (dagre, top to
// bottom) with its children as boxes, inner compounds first, so that a region's states stay
// together; parallel regions are packed side by side and in columns. A transition is routed in
// the innermost state that holds both ends, between the boxes that hold them there, then
// extended to the real states inside those boxes.
import * as dagre from '@dagrejs/dagre';
import type { VizEdge, VizGraph, VizNode } from './graph';

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** Top-left corner and size. */
export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface LaidState {
  readonly node: VizNode;
  readonly rect: Rect;
  /** Compound and parallel states: where the name (and invocations) are written. */
  readonly head?: Rect;
  readonly container: boolean;
  /** Transitions of a compound state into its own descendants, written under its name. */
  readonly handlers: readonly Handler[];
}

export interface Handler {
  readonly target: string;
  readonly text: string;
}

export interface LaidEdge {
  readonly source: string;
  readonly target: string;
  /** One line per transition between the two states ("event", then "[guard]"). */
  readonly lines: readonly string[];
  readonly points: readonly Point[];
  /** Centre of the label. */
  readonly labelAt?: Point;
  /** The arrow from a compound state's start dot to its initial state. */
  readonly initial: boolean;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly states: ReadonlyMap<string, LaidState>;
  readonly edges: readonly LaidEdge[];
}

export const FONT = 12;
export const LABEL_FONT = 11;
const CHAR_W = 7.1;
const BOLD_CHAR_W = 7.8;
const LABEL_CHAR_W = 6.4;
const LINE_H = 13;
const HEAD_H = 22;
const INVOKE_H = 13;
const PAD = 12;
const ROOT = '';

/** How wide a text is likely to be in the drawing's font (no font metrics at hand). */
export function textWidth(text: string, font: 'state' | 'bold' | 'label'): number {
  return text.length * (font === 'state' ? CHAR_W : font === 'bold' ? BOLD_CHAR_W : LABEL_CHAR_W);
}

export function invokeText(n: VizNode): string {
  return n.invokes.length ? `invoke: ${n.invokes.join(', ')}` : '';
}

/** "event [guard]" labels of one pair of states, each split into its event and guard lines. */
function labelLines(labels: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of labels) {
    const m = /^(.*?) (\[.*\])$/.exec(l);
    if (m) out.push(m[1], `  ${m[2]}`);
    else out.push(l);
  }
  return out;
}

interface Local {
  width: number;
  height: number;
  /** Children and the head, relative to the container's top-left corner. */
  place: Map<string, Rect>;
  head?: Rect;
  edges: { edge: MergedEdge | null; initialOf?: string; points: Point[]; labelAt?: Point }[];
}

interface MergedEdge {
  source: string;
  target: string;
  lines: string[];
}

export function layoutGraph(graph: VizGraph): Layout {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const children = new Map<string, VizNode[]>();
  for (const n of graph.nodes) {
    const p = n.parent ?? ROOT;
    children.set(p, [...(children.get(p) ?? []), n]);
  }
  const isContainer = (id: string) => id === ROOT || (children.get(id)?.length ?? 0) > 0;
  const ancestors = (id: string): string[] => {
    const out = [id];
    let cur = byId.get(id)?.parent;
    while (cur !== undefined) {
      out.push(cur);
      cur = byId.get(cur)?.parent;
    }
    out.push(ROOT);
    return out;
  };

  // Transitions between the same two states become one arrow with one label line each.
  const merged = new Map<string, MergedEdge>();
  const pending = new Map<string, string[]>();
  for (const e of graph.edges as VizEdge[]) {
    const k = `${e.source}\u0000${e.target}`;
    pending.set(k, [...(pending.get(k) ?? []), e.label]);
  }
  for (const [k, labels] of pending) {
    const [source, target] = k.split('\u0000');
    merged.set(k, { source, target, lines: labelLines(labels) });
  }

  // Where each arrow is routed: container, and the boxes standing for its ends there.
  const HEAD = (id: string) => `${id}\u0000head`;
  const routed = new Map<string, { edge: MergedEdge; from: string; to: string }[]>();
  const free: MergedEdge[] = [];
  const handlers = new Map<string, Handler[]>();
  for (const [k, labels] of pending) {
    const [source, target] = k.split('\u0000');
    if (source === target || !ancestors(target).includes(source)) continue;
    merged.delete(k);
    const rel = target.slice(source.length + 1);
    handlers.set(source, [...(handlers.get(source) ?? []), ...labels.map((l) => ({ target, text: `${l} \u2192 ${rel}` }))]);
  }
  const headSize = (node: VizNode) => {
    const lines = [invokeText(node), ...(handlers.get(node.id) ?? []).map((h) => h.text)].filter((l) => l);
    return {
      width: Math.max(textWidth(node.label, 'bold'), ...lines.map((l) => textWidth(l, 'label'))) + 28,
      height: HEAD_H + lines.length * INVOKE_H,
    };
  };
  for (const edge of merged.values()) {
    const sa = ancestors(edge.source);
    const ta = ancestors(edge.target);
    let container: string;
    let from: string;
    let to: string;
    if (edge.source === edge.target) {
      container = byId.get(edge.source)?.parent ?? ROOT;
      from = to = edge.source;
    } else if (ta.includes(edge.source)) {
      container = edge.source;
      from = HEAD(container);
      to = ta[ta.indexOf(container) - 1];
    } else if (sa.includes(edge.target)) {
      container = edge.target;
      from = sa[sa.indexOf(container) - 1];
      to = HEAD(container);
    } else {
      container = sa.find((a) => ta.includes(a))!;
      from = sa[sa.indexOf(container) - 1];
      to = ta[ta.indexOf(container) - 1];
    }
    if (container !== ROOT && byId.get(container)?.type === 'parallel') {
      free.push(edge);
      continue;
    }
    routed.set(container, [...(routed.get(container) ?? []), { edge, from, to }]);
  }

  const locals = new Map<string, Local>();
  const sizeOf = (id: string): { width: number; height: number } => {
    if (isContainer(id)) {
      const l = locals.get(id)!;
      return { width: l.width, height: l.height };
    }
    const n = byId.get(id)!;
    const width = Math.max(textWidth(n.label, 'state'), textWidth(invokeText(n), 'label')) + 24;
    return { width: Math.max(width, 64), height: n.invokes.length ? 40 : 28 };
  };

  const layoutCompound = (id: string): Local => {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: 'TB', nodesep: 22, ranksep: 30, edgesep: 12, marginx: PAD, marginy: PAD / 2 });
    g.setDefaultEdgeLabel(() => ({}));
    const node = byId.get(id);
    const head = node ? headSize(node) : { width: 14, height: 14 };
    g.setNode(HEAD(id), head);
    for (const c of children.get(id) ?? []) g.setNode(c.id, sizeOf(c.id));
    const initial = (children.get(id) ?? []).find((c) => c.initial);
    if (initial) g.setEdge(HEAD(id), initial.id, { weight: 10, minlen: 1 }, 'initial');
    // Keep the targets of the transitions written in the head below it.
    for (const h of handlers.get(id) ?? []) {
      const child = ancestors(h.target).find((a) => byId.get(a)?.parent === id);
      if (child && child !== initial?.id) g.setEdge(HEAD(id), child, { weight: 1, minlen: 1 }, `h:${child}`);
    }
    const list = routed.get(id) ?? [];
    // Ranks follow the shortest way in from the start: a transition back towards it is laid out
    // reversed (then drawn the right way), so that "closed -> initWait" does not push initWait down.
    const depth = new Map<string, number>([[HEAD(id), 0]]);
    for (let queue = [HEAD(id)]; queue.length; ) {
      const next: string[] = [];
      for (const v of queue) {
        const out = [...(initial && v === HEAD(id) ? [initial.id] : []), ...list.filter((e) => e.from === v).map((e) => e.to)];
        for (const w of out) {
          if (depth.has(w)) continue;
          depth.set(w, depth.get(v)! + 1);
          next.push(w);
        }
      }
      queue = next;
    }
    const backwards = list.map(({ from, to }) => from !== to && (depth.get(to) ?? Infinity) < (depth.get(from) ?? Infinity));
    list.forEach(({ edge, from, to }, i) => {
      const width = Math.max(...edge.lines.map((l) => textWidth(l, 'label'))) + 8;
      const label = { label: edge.lines.join('\n'), width, height: edge.lines.length * LINE_H + 4, labelpos: 'c', minlen: 1 };
      if (backwards[i]) g.setEdge(to, from, label, `e${i}`);
      else g.setEdge(from, to, label, `e${i}`);
    });
    dagre.layout(g);
    const place = new Map<string, Rect>();
    for (const v of g.nodes()) {
      const b = g.node(v) as { x: number; y: number; width: number; height: number };
      place.set(v, { x: b.x - b.width / 2, y: b.y - b.height / 2, width: b.width, height: b.height });
    }
    const edges: Local['edges'] = [];
    if (initial) {
      const ed = g.edge({ v: HEAD(id), w: initial.id, name: 'initial' }) as { points: Point[] };
      edges.push({ edge: null, initialOf: id, points: ed.points });
    }
    list.forEach(({ edge, from, to }, i) => {
      const ed = (backwards[i] ? g.edge({ v: to, w: from, name: `e${i}` }) : g.edge({ v: from, w: to, name: `e${i}` })) as { points: Point[]; x?: number; y?: number };
      const points = backwards[i] ? [...ed.points].reverse() : ed.points;
      edges.push({ edge, points, labelAt: ed.x === undefined ? undefined : { x: ed.x, y: ed.y ?? 0 } });
    });
    const { width = 0, height = 0 } = g.graph() as { width?: number; height?: number };
    return { width: Math.max(width, head.width + 2 * PAD), height, place, head: place.get(HEAD(id)), edges };
  };

  /** Regions side by side; the smaller ones stacked in columns no taller than the tallest. */
  const layoutParallel = (id: string): Local => {
    const node = byId.get(id)!;
    const { width: headW, height: headH } = headSize(node);
    const regions = (children.get(id) ?? []).map((c) => ({ id: c.id, ...sizeOf(c.id) }));
    const tallest = Math.max(0, ...regions.map((r) => r.height));
    const columns: { width: number; height: number; items: typeof regions }[] = [];
    for (const r of regions) {
      const col = columns.find((c) => c.height + PAD + r.height <= tallest && c.items.length > 0 && r.height < tallest);
      if (col) {
        col.items.push(r);
        col.height += PAD + r.height;
        col.width = Math.max(col.width, r.width);
      } else {
        columns.push({ width: r.width, height: r.height, items: [r] });
      }
    }
    const place = new Map<string, Rect>();
    let x = PAD;
    for (const col of columns) {
      let y = headH + PAD / 2;
      for (const r of col.items) {
        place.set(r.id, { x, y, width: col.width, height: r.height });
        y += r.height + PAD;
      }
      x += col.width + PAD;
    }
    return {
      width: Math.max(x, headW + 2 * PAD),
      height: headH + PAD / 2 + tallest + PAD,
      place,
      head: { x: PAD, y: 4, width: headW, height: headH },
      edges: [],
    };
  };

  // Innermost containers first.
  const depth = (id: string) => (id === ROOT ? 0 : ancestors(id).length);
  const containers = [ROOT, ...graph.nodes.filter((n) => isContainer(n.id)).map((n) => n.id)].sort((a, b) => depth(b) - depth(a));
  for (const id of containers) {
    locals.set(id, id !== ROOT && byId.get(id)!.type === 'parallel' ? layoutParallel(id) : layoutCompound(id));
  }

  // Absolute positions, from the root down.
  const states = new Map<string, LaidState>();
  const heads = new Map<string, Rect>();
  const edges: LaidEdge[] = [];
  const shift = (r: Rect, o: Point): Rect => ({ ...r, x: r.x + o.x, y: r.y + o.y });
  const place = (id: string, origin: Point) => {
    const local = locals.get(id)!;
    if (local.head) heads.set(id, shift(local.head, origin));
    for (const c of children.get(id) ?? []) {
      const rect = shift(local.place.get(c.id)!, origin);
      if (isContainer(c.id)) {
        place(c.id, { x: rect.x, y: rect.y });
        states.set(c.id, { node: c, rect, head: heads.get(c.id), container: true, handlers: handlers.get(c.id) ?? [] });
      } else {
        states.set(c.id, { node: c, rect, container: false, handlers: [] });
      }
    }
    for (const e of local.edges) {
      const points = e.points.map((p) => ({ x: p.x + origin.x, y: p.y + origin.y }));
      const labelAt = e.labelAt && { x: e.labelAt.x + origin.x, y: e.labelAt.y + origin.y };
      if (!e.edge) {
        edges.push({ source: e.initialOf!, target: e.initialOf!, lines: [], points, initial: true });
        continue;
      }
      edges.push({ source: e.edge.source, target: e.edge.target, lines: e.edge.lines, points, labelAt, initial: false });
    }
  };
  place(ROOT, { x: 0, y: 0 });
  const root = locals.get(ROOT)!;
  if (root.head) heads.set(ROOT, root.head);

  // Extend the arrows routed between outer boxes to the states they really join.
  const anchorRect = (id: string, routedTo: Point): Rect => {
    const s = states.get(id)!;
    // A transition of a compound state itself leaves from (or enters) its head.
    return s.container && s.head && inside(routedTo, s.rect) ? s.head : s.rect;
  };
  const finished = edges.map((e) => {
    if (e.source === e.target && !e.initial) return selfLoop(e, states.get(e.source)!.rect);
    if (e.initial || e.points.length === 0) return e;
    const pts = [...e.points];
    const src = anchorRect(e.source, pts[0]);
    const dst = anchorRect(e.target, pts[pts.length - 1]);
    const srcInside = !onBorder(pts[0], src);
    const dstInside = !onBorder(pts[pts.length - 1], dst);
    // Leave the outer box straight from the inner state rather than through the point where the
    // route met the outer box (that detour would cross the box's other states).
    if (srcInside && pts.length > 2) pts.shift();
    if (dstInside && pts.length > 2) pts.pop();
    if (srcInside) pts.unshift(borderPoint(src, pts[0]));
    if (dstInside) pts.push(borderPoint(dst, pts[pts.length - 1]));
    return { ...e, points: pts };
  });
  for (const edge of free) {
    const a = states.get(edge.source)!.rect;
    const b = states.get(edge.target)!.rect;
    const ca = centre(a);
    const cb = centre(b);
    const mid = { x: (ca.x + cb.x) / 2, y: (ca.y + cb.y) / 2 };
    finished.push({ source: edge.source, target: edge.target, lines: edge.lines, points: [borderPoint(a, cb), mid, borderPoint(b, ca)], labelAt: mid, initial: false });
  }
  return { width: root.width, height: root.height, states, edges: finished };
}

/** A small loop on the right of the state, its label beside it. */
function selfLoop(e: LaidEdge, r: Rect): LaidEdge {
  const right = r.x + r.width;
  const cy = r.y + r.height / 2;
  const w = Math.max(...e.lines.map((l) => textWidth(l, 'label')));
  return {
    ...e,
    points: [{ x: right, y: cy - 7 }, { x: right + 22, y: cy - 16 }, { x: right + 22, y: cy + 16 }, { x: right, y: cy + 7 }],
    labelAt: { x: right + 26 + w / 2, y: cy },
  };
}

const centre = (r: Rect): Point => ({ x: r.x + r.width / 2, y: r.y + r.height / 2 });
const inside = (p: Point, r: Rect) => p.x > r.x + 0.5 && p.x < r.x + r.width - 0.5 && p.y > r.y + 0.5 && p.y < r.y + r.height - 0.5;

function onBorder(p: Point, r: Rect): boolean {
  const near = (a: number, b: number) => Math.abs(a - b) < 1;
  const inX = p.x >= r.x - 1 && p.x <= r.x + r.width + 1;
  const inY = p.y >= r.y - 1 && p.y <= r.y + r.height + 1;
  return (inX && (near(p.y, r.y) || near(p.y, r.y + r.height))) || (inY && (near(p.x, r.x) || near(p.x, r.x + r.width)));
}

/** Where the line from the rectangle's centre towards p leaves the rectangle. */
export function borderPoint(r: Rect, p: Point): Point {
  const c = centre(r);
  const dx = p.x - c.x;
  const dy = p.y - c.y;
  if (dx === 0 && dy === 0) return { x: c.x, y: r.y + r.height };
  const sx = dx === 0 ? Infinity : r.width / 2 / Math.abs(dx);
  const sy = dy === 0 ? Infinity : r.height / 2 / Math.abs(dy);
  const s = Math.min(sx, sy);
  return { x: c.x + dx * s, y: c.y + dy * s };
}
