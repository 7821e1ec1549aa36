import { createMachine, fromCallback, setup } from 'xstate';
import { activeStateIds, machineGraph, toMermaid, toStatelyJson, toSvg } from '../../src/viz';

const machine = setup({
  actors: { link: fromCallback(() => () => undefined) },
  guards: { ready: () => true },
}).createMachine({
  id: 'toy',
  initial: 'idle',
  states: {
    idle: { on: { start: { target: 'running', guard: 'ready' } } },
    running: {
      initial: 'warming',
      invoke: { src: 'link', id: 'link' },
      on: { stop: 'idle' },
      states: { warming: { on: { warm: 'hot' } }, hot: { always: '#toy.done' } },
    },
    done: { type: 'final' },
  },
});

describe('statechart visualisation', () => {
  const graph = machineGraph(machine);

  it('reads every state, its nesting, initial flags and invocations from the definition', () => {
    expect(graph.nodes.map((n) => [n.id, n.parent, n.type, n.initial])).toEqual([
      ['toy.idle', undefined, 'atomic', true],
      ['toy.running', undefined, 'compound', false],
      ['toy.running.warming', 'toy.running', 'atomic', true],
      ['toy.running.hot', 'toy.running', 'atomic', false],
      ['toy.done', undefined, 'final', false],
    ]);
    expect(graph.nodes.find((n) => n.id === 'toy.running')?.invokes).toEqual(['link']);
  });

  it('reads every transition with its event and guard', () => {
    expect(graph.edges).toEqual(
      expect.arrayContaining([
        { source: 'toy.idle', target: 'toy.running', label: 'start [ready]' },
        { source: 'toy.running', target: 'toy.idle', label: 'stop' },
        { source: 'toy.running.warming', target: 'toy.running.hot', label: 'warm' },
        { source: 'toy.running.hot', target: 'toy.done', label: 'always' },
      ]),
    );
    expect(graph.edges).toHaveLength(4);
  });

  it('names the active states of a nested value, ancestors included', () => {
    expect(activeStateIds('toy', { running: 'hot' })).toEqual(['toy.running', 'toy.running.hot']);
    expect(activeStateIds('toy', 'idle')).toEqual(['toy.idle']);
  });

  it('writes Mermaid with nested states and every transition', () => {
    const text = toMermaid(graph);
    expect(text.startsWith('stateDiagram-v2\n')).toBe(true);
    expect(text).toContain('state toy_running {');
    expect(text).toContain('toy_idle --> toy_running : start [ready]');
    expect(text).toContain('[*] --> toy_idle');
  });

  it('draws an SVG with one addressable group per state and one path per transition', () => {
    const svg = toSvg(graph);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const id of ['toy.idle', 'toy.running', 'toy.running.warming', 'toy.running.hot', 'toy.done']) {
      expect(svg).toContain(`data-state="${id}"`);
    }
    expect(svg.match(/class="edge"/g)).toHaveLength(4);
    expect(svg).not.toMatch(/NaN/);
  });

  it('exports a JSON machine config that XState loads back into the same statechart', () => {
    const json = JSON.parse(toStatelyJson(machine)) as { id: string; initial: string; states: Record<string, { invoke?: unknown; on?: unknown }> };
    expect(json.id).toBe('toy');
    expect(json.initial).toBe('idle');
    expect(Object.keys(json.states)).toEqual(['idle', 'running', 'done']);
    expect(json.states.running.invoke).toEqual([{ src: 'link', id: 'link' }]);
    expect(json.states.idle.on).toEqual({ start: [{ target: ['#toy.running'], guard: 'ready' }] });
    expect(machineGraph(createMachine(json as never))).toEqual(graph);
  });

  it('writes the transitions of a compound state into its own children under its name', () => {
    const nested = createMachine({
      id: 'n',
      initial: 'outer',
      states: { outer: { initial: 'a', on: { reset: '.a' }, states: { a: { on: { go: 'b' } }, b: {} } } },
    });
    const svg = toSvg(machineGraph(nested));
    expect(svg).toContain('reset \u2192 a</text>');
    // One drawn arrow (go) besides the initial arrows; the handler is text.
    expect(svg.match(/class="edge"/g)).toHaveLength(1);
    expect(svg.match(/class="edge initial"/g)).toHaveLength(2);
  });
});
