import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AnyStateMachine } from 'xstate';
import { UserError, parseOptions, type Command } from '../command';
import { blockDeviceMachine, busMachine, frontendMachine } from '../../machines';
import { machineGraph, toMermaid, toStatelyJson, toSvg } from '../../viz';

const usage = `usage: xenblkd viz [--out DIR] [--format svg|mermaid|json|all] [--machine NAME ...]

Draws the statecharts from their definitions in the code: the bus, the block device (vbd) and the
simulated guest's frontend (blkfront). Writes <machine>.svg, <machine>.mmd (Mermaid
stateDiagram-v2) and <machine>.json (a machine config the Stately and XState visualisers import).

  --out DIR          where the files go (default: the current folder; created if missing)
  --format F         svg, mermaid, json or all (default all)
  --machine NAME     only this machine: bus, vbd or blkfront (repeatable)`;

export const MACHINES: Record<string, AnyStateMachine> = {
  bus: busMachine as unknown as AnyStateMachine,
  vbd: blockDeviceMachine as unknown as AnyStateMachine,
  blkfront: frontendMachine as unknown as AnyStateMachine,
};

const FORMATS = {
  svg: { ext: 'svg', render: (m: AnyStateMachine) => toSvg(machineGraph(m)) },
  mermaid: { ext: 'mmd', render: (m: AnyStateMachine) => toMermaid(machineGraph(m)) },
  json: { ext: 'json', render: (m: AnyStateMachine) => toStatelyJson(m) },
} as const;

type Format = keyof typeof FORMATS;

export const command: Command = {
  summary: 'draw the statecharts as SVG, Mermaid and Stately/XState JSON',
  usage,
  async run(argv) {
    const { values } = parseOptions(argv, {
      out: { type: 'string' },
      format: { type: 'string' },
      machine: { type: 'string', multiple: true },
    });
    const format = values.format ?? 'all';
    if (format !== 'all' && !(format in FORMATS)) throw new UserError(`--format takes svg, mermaid, json or all, got '${format}'`);
    const formats: Format[] = format === 'all' ? (Object.keys(FORMATS) as Format[]) : [format as Format];
    const names = values.machine ?? Object.keys(MACHINES);
    for (const n of names) if (!(n in MACHINES)) throw new UserError(`--machine takes ${Object.keys(MACHINES).join(', ')}, got '${n}'`);
    const out = path.resolve(values.out ?? '.');
    try {
      fs.mkdirSync(out, { recursive: true });
    } catch (err) {
      throw new UserError(`cannot create ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    for (const name of names) {
      for (const f of formats) {
        const file = path.join(out, `${name}.${FORMATS[f].ext}`);
        try {
          fs.writeFileSync(file, FORMATS[f].render(MACHINES[name]));
        } catch (err) {
          throw new UserError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        process.stdout.write(`${file}\n`);
      }
    }
    return 0;
  },
};
