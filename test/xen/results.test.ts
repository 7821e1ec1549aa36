import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BEGIN, END, replaceBlock, resultRows, resultsMarkdown, writeResults } from './lib/results';

const report = {
  scenario: 'real-xen',
  finishedAt: '2025-01-01T00:00:00.000Z',
  wallSeconds: 612.4,
  versions: { xen: '4.17.7', linux: '6.1.0-56-amd64', qemu: 'QEMU emulator version 7.2.22', node: 'v20.19.0' },
  steps: [
    { origin: 'host', step: 'build', status: 'PASS' },
    { origin: 'dom0', step: 'kill-1', status: 'PASS' },
    { origin: 'domu1', step: 'workload', status: 'PASS' },
  ],
  infos: {
    'xenblkd-kills': '4',
    'kill-1': 'domu1 round 3, in flight 2, I/O went on after 14.2 s, restarted with data path map',
    'kill-2': 'domu1 round 5, in flight 0, I/O went on after 12.0 s, restarted with data path persistent',
    'kill-3': 'domu2 (16-page ring, persistent grants on) after 2 verified writes; 7 requests waiting',
    'xenblkd-log': '900 lines, 1 errors, 0 fatal; at error level: 1 expected by their step, 0 unexpected',
    'domu1.domu-fresh-bytes-verified': '37748736',
    'domu2.domu-fresh-bytes-verified': '41943040',
    'xenblkd-ops': 'read=100 write=200 flush=30 discard=4 error=0',
    'xenblkd-bytes': 'read=1048576 written=2097152',
    'xenblkd-starts': '5',
    'image-check-domu1': '40 regions, 10485760 bytes',
    'image-check-domu2': '44 regions, 5242880 bytes',
    'domu1.domu-blockstat-workload': 'reads=10 read_sectors=80 writes=20 write_sectors=160 discards=2 discard_sectors=16384 flushes=7',
    'domu1.domu-ring-page-order': '0',
    'domu1.domu-max-segments': '32',
    'domu1.domu-feature-persistent': '1',
    'domu1.domu-bytes-verified': '20971520',
    'domu1.domu-longest-stall-ms': '15230',
    'domu1.domu-verified-after-attach': '40 regions, 10485760 bytes',
    'domu2.domu-ring-page-order': '4',
    'domu2.domu-max-segments': '128',
    'domu2.domu-feature-persistent': '1',
    'domu2.domu-bytes-verified': '10485760',
    'domu2.domu-longest-stall-ms': '9000',
    'domu2.domu-verified-previous': '40 regions, 10485760 bytes',
    'detach-seconds': '9.5',
    'attach-seconds': '11.2',
  },
};

const row = (rows: [string, string][], what: RegExp) => rows.find(([k]) => what.test(k))?.[1];

describe('real-xen results table', () => {
  it('states the outcome, kills, bytes, stalls, rings and versions from the facts', () => {
    const rows = resultRows(report);
    expect(row(rows, /^result$/)).toBe('PASS: 3 steps passed, 0 failed');
    expect(row(rows, /SIGKILLs/)).toMatch(/^4 \(kill-1: domu1 round 3.*; kill-2: .*persistent; kill-3: domu2 .*\)$/);
    expect(row(rows, /bytes verified/)).toBe('30.0 MiB in the guests (domu1 20.0 MiB, domu2 10.0 MiB); 15.0 MiB checked again in the image file from dom0');
    expect(row(rows, /^fresh data verified across the kills/)).toBe('76.0 MiB (domu1 36.0 MiB, domu2 40.0 MiB)');
    expect(row(rows, /^kills by ring$/)).toBe(
      'kill-1, kill-2: domu1 (1-page ring, 32 segments per request, persistent grants on); kill-3: domu2 (16-page ring, 128 segments per request, persistent grants on)',
    );
    expect(row(rows, /^daemon log/)).toMatch(/1 expected by their step, 0 unexpected$/);
    expect(row(rows, /longest I\/O stall/)).toBe('domu1 15230 ms, domu2 9000 ms');
    expect(row(rows, /rings/)).toBe('domu1: 1-page ring, 32 segments per request, persistent grants on; domu2: 16-page ring, 128 segments per request, persistent grants on');
    expect(row(rows, /guest block layer/)).toBe('domu1: 10 reads, 20 writes, 7 flushes, 2 discards');
    expect(row(rows, /answered by xenblkd/)).toMatch(/^100 read, 200 write, 30 flush, 4 discard, 0 with an error \(1\.0 MiB read, 2\.0 MiB written\) over 5 daemon starts/);
    expect(row(rows, /unplug/)).toBe('xenblkd detach 9.5 s, xenblkd attach 11.2 s, then 40 regions, 10485760 bytes read back unchanged');
    expect(row(rows, /reconnect/)).toBe("domu2 found the previous guest's data: 40 regions, 10485760 bytes");
    expect(row(rows, /versions/)).toBe('Xen 4.17.7, Linux 6.1.0-56-amd64 (dom0 and domU), QEMU emulator version 7.2.22, Node v20.19.0');
  });

  it('describes the qcow2 disk, and keeps its image check out of the raw image figures', () => {
    const infos = {
      ...report.infos,
      'qcow2-attach-seconds': '6.10',
      'domu2.domu-xvdb-fresh-bytes-verified': '13631488',
      'domu2.domu-xvdb-bytes-verified': '27262976',
      'qcow2-storage-daemon-adopted': 'pid 812 (started at tick 9000) served the disk before and after the kill',
      'qcow2-detach-seconds': '4.20',
      'qcow2-check': 'No errors were found on the image. 208/4096 = 5.08% allocated ',
      'image-check-qcow2': '4 regions, 13631488 bytes',
    };
    const rows = resultRows({ ...report, infos });
    expect(row(rows, /^qcow2 disk/)).toBe(
      'domu2 xvdb: xenblkd attach 6.10 s; 13.0 MiB of fresh data verified (26.0 MiB read back); qemu-storage-daemon pid 812 (started at tick 9000) served the disk before and after the kill; ' +
        'xenblkd detach 4.20 s, its storage daemon stopped; qemu-img check: No errors were found on the image. 208/4096 = 5.08% allocated; 4 regions, 13631488 bytes checked again in the image from dom0',
    );
    // The raw image's figures are the same with or without the qcow2 disk.
    expect(row(rows, /bytes verified/)).toBe(row(resultRows(report), /bytes verified/));
    expect(row(rows, /^fresh data verified across the kills/)).toBe('76.0 MiB (domu1 36.0 MiB, domu2 40.0 MiB)');
    expect(row(resultRows(report), /^qcow2 disk/)).toBeUndefined();
  });

  it('says FAIL when a step failed and leaves out facts that were never reported', () => {
    const rows = resultRows({ ...report, steps: [...report.steps, { origin: 'dom0', step: 'kill-2', status: 'FAIL' }], infos: {} });
    expect(row(rows, /^result$/)).toBe('FAIL: 3 steps passed, 1 failed');
    expect(row(rows, /SIGKILLs/)).toBeUndefined();
    expect(row(rows, /bytes verified/)).toBeUndefined();
    expect(row(rows, /fresh data/)).toBeUndefined();
    expect(row(rows, /kills by ring/)).toBeUndefined();
  });

  it('escapes table separators in values', () => {
    const md = resultsMarkdown({ ...report, infos: { 'kill-1': 'a | b', 'xenblkd-kills': '1' } });
    expect(md).toContain('a \\| b');
  });

  it('rewrites only the block between the markers, and leaves a README without them alone', () => {
    const readme = `# x\n\nbefore\n${BEGIN}\nold table\n${END}\nafter\n`;
    const out = replaceBlock(readme, '| new |');
    expect(out).toBe(`# x\n\nbefore\n${BEGIN}\n| new |\n${END}\nafter\n`);
    expect(replaceBlock(out!, '| new |')).toBe(out);
    expect(replaceBlock('# no markers\n', '| new |')).toBeNull();
    expect(replaceBlock(`${END}\n${BEGIN}\n`, '| new |')).toBeNull();
  });

  it('writes the docs file and the README block', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xen-results-'));
    try {
      const docsFile = path.join(dir, 'results.md');
      const readmeFile = path.join(dir, 'README.md');
      fs.writeFileSync(readmeFile, `intro\n${BEGIN}\n${END}\nend\n`);
      const done = writeResults(report, { docsFile, readmeFile });
      expect(done).toEqual([`wrote ${docsFile}`, `updated the results block in ${readmeFile}`]);
      expect(fs.readFileSync(docsFile, 'utf8')).toContain('| SIGKILLs survived (guest I/O going on, no I/O error) | 4 (');
      const text = fs.readFileSync(readmeFile, 'utf8');
      expect(text.startsWith('intro\n')).toBe(true);
      expect(text.endsWith(`${END}\nend\n`)).toBe(true);
      expect(text).toContain('| result | PASS: 3 steps passed, 0 failed |');
      fs.writeFileSync(readmeFile, 'no block\n');
      expect(writeResults(report, { docsFile, readmeFile })[1]).toMatch(/has no .* block: left alone/);
      expect(fs.readFileSync(readmeFile, 'utf8')).toBe('no block\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
