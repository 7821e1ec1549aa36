// The machine as a JSON machine config (the object createMachine takes), the form the Stately
// and XState visualisers import: states, initial states, invocations, entry/exit actions and every
// transition with its event, guard and absolute target (#id). Actions, guards and actors appear by
// name; their code stays in the project.
import type { AnyStateMachine } from 'xstate';

interface NodeLike {
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  states: Record<string, NodeLike>;
  initial?: { target: readonly NodeLike[] };
  invoke: readonly { src: unknown; id: string }[];
  entry: readonly unknown[];
  exit: readonly unknown[];
  transitions: Map<string, readonly TransitionLike[]>;
  always?: readonly TransitionLike[];
}

interface TransitionLike {
  target?: readonly NodeLike[];
  guard?: unknown;
  actions: readonly unknown[];
  reenter?: boolean;
}

type Json = Record<string, unknown>;

/** The name of an action or guard; inline code has none and is left out. */
function nameOf(x: unknown): string | Json | undefined {
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && 'type' in x && typeof (x as { type: unknown }).type === 'string') {
    const { type, params } = x as { type: string; params?: unknown };
    return params === undefined || typeof params === 'function' ? type : { type, params };
  }
  return undefined;
}

function names(list: readonly unknown[]): (string | Json)[] {
  return list.map(nameOf).filter((n): n is string | Json => n !== undefined);
}

function transition(t: TransitionLike): Json {
  const out: Json = {};
  if (t.target?.length) out.target = t.target.map((n) => `#${n.id}`);
  const guard = nameOf(t.guard);
  if (guard !== undefined) out.guard = guard;
  const actions = names(t.actions);
  if (actions.length) out.actions = actions;
  if (t.reenter) out.reenter = true;
  return out;
}

function stateConfig(node: NodeLike): Json {
  const out: Json = { id: node.id };
  if (node.type === 'parallel' || node.type === 'final' || node.type === 'history') out.type = node.type;
  const initial = node.initial?.target[0];
  if (initial) out.initial = initial.key;
  if (node.invoke.length) out.invoke = node.invoke.map((i) => ({ src: typeof i.src === 'string' ? i.src : i.id, id: i.id }));
  const entry = names(node.entry);
  if (entry.length) out.entry = entry;
  const exit = names(node.exit);
  if (exit.length) out.exit = exit;
  const on: Json = {};
  const after: Json = {};
  for (const [eventType, list] of node.transitions) {
    const delayed = /^xstate\.after\.([^.]+)\./.exec(eventType);
    const ts = list.map(transition);
    if (delayed) after[delayed[1]] = ts;
    else on[eventType] = ts;
  }
  if (Object.keys(on).length) out.on = on;
  if (Object.keys(after).length) out.after = after;
  if (node.always?.length) out.always = node.always.map(transition);
  const states = Object.entries(node.states);
  if (states.length) out.states = Object.fromEntries(states.map(([k, child]) => [k, stateConfig(child)]));
  return out;
}

export function statelyConfig(machine: AnyStateMachine): Json {
  return stateConfig(machine.root as unknown as NodeLike);
}

export function toStatelyJson(machine: AnyStateMachine): string {
  return JSON.stringify(statelyConfig(machine), null, 2) + '\n';
}
