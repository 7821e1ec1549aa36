// A statechart as plain nodes and edges, read from the machine definition itself so that every
// picture of it is generated and cannot drift from the code.
import type { AnyStateMachine } from 'xstate';

export interface VizNode {
  /** The XState state id, e.g. "device.connected"; what a snapshot's active states are matched on. */
  readonly id: string;
  readonly label: string;
  readonly parent?: string;
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The initial child of its parent. */
  readonly initial: boolean;
  readonly invokes: readonly string[];
}

export interface VizEdge {
  readonly source: string;
  readonly target: string;
  readonly label: string;
}

export interface VizGraph {
  readonly machineId: string;
  readonly nodes: readonly VizNode[];
  readonly edges: readonly VizEdge[];
}

interface StateNodeLike {
  id: string;
  key: string;
  type: VizNode['type'];
  parent?: StateNodeLike;
  states: Record<string, StateNodeLike>;
  initial?: { target: readonly StateNodeLike[] };
  invoke: readonly { src: unknown; id: string }[];
  transitions: Map<string, readonly TransitionLike[]>;
  always?: readonly TransitionLike[];
}

interface TransitionLike {
  target?: readonly StateNodeLike[];
  guard?: unknown;
  eventType: string;
}

export function eventLabel(eventType: string): string {
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `done: ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `error: ${error[1]}`;
  if (eventType.startsWith('xstate.after.')) return `after ${eventType.split('.')[2]}`;
  return eventType;
}

function guardLabel(guard: unknown): string {
  if (!guard) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return ` [${String((guard as { type: unknown }).type)}]`;
  return ' [guard]';
}

export function machineGraph(machine: AnyStateMachine): VizGraph {
  const nodes: VizNode[] = [];
  const edges: VizEdge[] = [];
  const visit = (node: StateNodeLike) => {
    const parent = node.parent;
    if (parent) {
      nodes.push({
        id: node.id,
        label: node.key,
        parent: parent.parent ? parent.id : undefined,
        type: node.type,
        initial: parent.initial?.target.some((t) => t.id === node.id) ?? false,
        invokes: node.invoke.map((i) => (typeof i.src === 'string' ? i.src : i.id)),
      });
    }
    const add = (t: TransitionLike, label: string) => {
      for (const target of t.target ?? []) {
        edges.push({ source: node.id, target: target.id, label: label + guardLabel(t.guard) });
      }
    };
    for (const [eventType, list] of node.transitions) for (const t of list) add(t, eventLabel(eventType));
    for (const t of node.always ?? []) add(t, 'always');
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as StateNodeLike);
  // Edges from the root (global events) are drawn from nowhere; keep only those between states.
  const ids = new Set(nodes.map((n) => n.id));
  return { machineId: machine.id, nodes, edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)) };
}

/** The ids of the active states (leaves and their ancestors) of a state value. */
export function activeStateIds(machineId: string, value: unknown): string[] {
  const out: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (typeof v === 'string') {
      out.push(`${prefix}.${v}`);
    } else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        out.push(`${prefix}.${k}`);
        walk(`${prefix}.${k}`, child);
      }
    }
  };
  walk(machineId, value);
  return out;
}
