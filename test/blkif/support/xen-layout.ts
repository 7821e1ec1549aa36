// Compiles and runs xen-layout.c against Xen's public headers (libxen-dev) with the system C
// compiler: the independent reference for the ring ABI offsets.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface CLayout {
  req: Record<'operation' | 'nr_segments' | 'handle' | 'id' | 'sector_number' | 'seg' | 'size', number>;
  seg: Record<'gref' | 'first_sect' | 'last_sect' | 'size', number>;
  discard: Record<'operation' | 'flag' | 'handle' | 'id' | 'sector_number' | 'nr_sectors' | 'size', number>;
  indirect: Record<
    'operation' | 'indirect_op' | 'nr_segments' | 'id' | 'sector_number' | 'handle' | 'indirect_grefs' | 'size',
    number
  >;
  rsp: Record<'id' | 'operation' | 'status' | 'size', number>;
  sring: Record<'req_prod' | 'req_event' | 'rsp_prod' | 'rsp_event' | 'ring' | 'entry', number>;
  entries: number[];
  constants: Record<string, number>;
  samples: Record<'rw' | 'discard' | 'indirect' | 'rsp', string>;
}

/** Layouts for x86_64 (native) and the i386 packing. */
export function compileXenLayouts(): { x86_64: CLayout; x86_32: CLayout } {
  const src = path.join(__dirname, 'xen-layout.c');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xen-layout-'));
  try {
    const run = (flags: string[]): CLayout => {
      const exe = path.join(dir, `layout${flags.join('')}`);
      execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', ...flags, '-o', exe, src], { stdio: 'pipe' });
      return JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as CLayout;
    };
    return { x86_64: run([]), x86_32: run(['-DPACK4']) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
