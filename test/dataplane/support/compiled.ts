// Child processes run the sources compiled once per test file (swc, into a temp dir), so that a
// restart costs a node start, not a TypeScript compile of every module.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { transformFileSync } from '@swc/core';

const ROOT = path.resolve(__dirname, '../../..');
let compiled: { dir: string; nodePath: string } | undefined;

function walk(dir: string, out: string[]): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
}

/** Compiles src/ (once per process); returns the compiled path of a module under src/. */
export function compiledModule(relFromSrc: string): { file: string; env: NodeJS.ProcessEnv } {
  if (!compiled) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-compiled-'));
    const files: string[] = [];
    walk(path.join(ROOT, 'src'), files);
    for (const f of files) {
      const rel = path.relative(ROOT, f).replace(/\.ts$/, '.js');
      const { code } = transformFileSync(f, {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: false,
      });
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), code);
    }
    compiled = { dir, nodePath: path.join(ROOT, 'node_modules') };
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return {
    file: path.join(compiled.dir, 'src', relFromSrc.replace(/\.ts$/, '.js')),
    env: { ...process.env, NODE_PATH: compiled.nodePath },
  };
}
