// `xenblkd viz` through the real CLI: the files it writes parse with independent parsers
// (python's XML parser for the SVG, XState itself for the JSON) and name every state.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createMachine, type AnyStateMachine } from 'xstate';
import { blockDeviceMachine, busMachine, frontendMachine } from '../../src/machines';
import { machineGraph } from '../../src/viz';
import { tempDir } from '../support/temp';

const cli = path.join(__dirname, '../../dist/cli/main.js');
const machines: Record<string, AnyStateMachine> = {
  bus: busMachine as unknown as AnyStateMachine,
  vbd: blockDeviceMachine as unknown as AnyStateMachine,
  blkfront: frontendMachine as unknown as AnyStateMachine,
};

/** Parses the SVG with python's XML parser and returns the data-state ids of its state groups. */
function svgStateIds(file: string): string[] {
  const py = [
    'import sys, json, xml.etree.ElementTree as ET',
    'root = ET.parse(sys.argv[1]).getroot()',
    'assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag',
    'print(json.dumps([g.get("data-state") for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-state")]))',
  ].join('\n');
  const r = spawnSync('python3', ['-c', py, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`not well-formed XML: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe('xenblkd viz', () => {
  const out = tempDir('xenblkd-viz-');
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it('writes SVG, Mermaid and JSON for the bus, vbd and blkfront machines', () => {
    const r = spawnSync('node', [cli, 'viz', '--out', out], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(
      ['blkfront', 'bus', 'vbd'].flatMap((m) => [`${m}.json`, `${m}.mmd`, `${m}.svg`]),
    );
    expect(r.stdout.trim().split('\n')).toHaveLength(9);
  });

  it.each(Object.keys(machines))('%s.svg is well-formed XML with a group for every state', (name) => {
    const ids = svgStateIds(path.join(out, `${name}.svg`));
    const expected = machineGraph(machines[name]).nodes.map((n) => n.id);
    expect(new Set(ids)).toEqual(new Set(expected));
    expect(ids).toHaveLength(expected.length);
    expect(fs.readFileSync(path.join(out, `${name}.svg`), 'utf8')).not.toMatch(/NaN|undefined/);
  });

  it.each(Object.keys(machines))('%s.mmd declares every state and only transitions between declared states', (name) => {
    const text = fs.readFileSync(path.join(out, `${name}.mmd`), 'utf8');
    expect(text.startsWith('stateDiagram-v2\n')).toBe(true);
    const declared = new Set([...text.matchAll(/^\s*state "[^"]*" as (\S+)$/gm)].map((m) => m[1]));
    const graph = machineGraph(machines[name]);
    expect(declared).toEqual(new Set(graph.nodes.map((n) => n.id.replace(/[^A-Za-z0-9_]/g, '_'))));
    const arrows = [...text.matchAll(/^\s*(\S+) --> (\S+)(?: : .*)?$/gm)].filter((m) => m[1] !== '[*]' && m[2] !== '[*]');
    expect(arrows).toHaveLength(graph.edges.length);
    for (const m of arrows) {
      expect(declared).toContain(m[1]);
      expect(declared).toContain(m[2]);
    }
    expect(text.split('{').length).toBe(text.split('}').length);
    // Regions of a parallel state are separated as Mermaid's concurrent states.
    const regions = graph.nodes.filter((n) => n.parent !== undefined && graph.nodes.find((p) => p.id === n.parent)?.type === 'parallel');
    const parallels = new Set(regions.map((r) => r.parent)).size;
    expect(text.match(/^\s*--$/gm)?.length ?? 0).toBe(regions.length - parallels);
  });

  it.each(Object.keys(machines))('%s.json loads into XState as the same statechart', (name) => {
    const config = JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), 'utf8')) as Parameters<typeof createMachine>[0];
    const reloaded = createMachine(config);
    expect(machineGraph(reloaded)).toEqual(machineGraph(machines[name]));
  });

  it('writes one format and one machine when asked', () => {
    const dir = path.join(out, 'one');
    const r = spawnSync('node', [cli, 'viz', '--out', dir, '--format', 'mermaid', '--machine', 'vbd'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['vbd.mmd']);
  });
});
