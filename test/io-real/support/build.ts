// Compiles C test helpers with gcc into a temp dir.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Built {
  path: string;
  cleanup(): void;
}

export function compile(source: string, kind: 'shared' | 'program'): Built {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xen-c-'));
  const out = path.join(dir, kind === 'shared' ? 'lib.so' : 'prog');
  const args = ['-Wall', '-Wextra', '-Werror', '-O1', '-o', out, source];
  execFileSync('gcc', kind === 'shared' ? ['-shared', '-fPIC', ...args] : args, { stdio: 'pipe' });
  return { path: out, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export const FAKE_XEN_SOURCE = path.join(__dirname, 'fake-xen.c');
