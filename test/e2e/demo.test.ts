// `xenblkd demo` end to end through the real CLI: the simulated host, the daemon in a child
// process SIGKILLed and restarted while the guests' verifying workloads run, and the summary.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DemoSummary } from '../../src/demo/demo';

const cli = path.join(__dirname, '../../dist/cli/main.js');

function demo(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('xenblkd demo', () => {
  it('survives daemon kills with every read verified and no request lost or duplicated', async () => {
    const r = await demo(['--guests', '2', '--seconds', '9', '--kill-every', '3', '--image-mib', '64', '--json']);
    expect(r.status).toBe(0);
    // --json: stdout holds the summary alone; the progress went to stderr.
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]) as DemoSummary;
    expect(summary.ok).toBe(true);
    // The first kill comes at 3 s; how many more fit depends on how fast the daemon restarts here.
    expect(summary.kills).toBeGreaterThanOrEqual(1);
    expect(summary.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(summary.devices).toHaveLength(2);
    for (const d of summary.devices) {
      expect({ device: d.device, errors: d.errors, mismatches: d.mismatches, lost: d.lost, duplicated: d.duplicated }).toEqual({
        device: d.device,
        errors: 0,
        mismatches: 0,
        lost: 0,
        duplicated: 0,
      });
      expect(d.requests).toBeGreaterThan(0);
      expect(d.bytes).toBeGreaterThan(0);
      expect(d.recoveries).toBeGreaterThanOrEqual(summary.kills);
      expect(d.longestStallMs).toBeGreaterThan(0);
      expect(d.recoveryPausesMs).toHaveLength(d.recoveries);
    }
    // The operator is told about each kill and restart on the way.
    expect(r.stderr.match(/>>> SIGKILL daemon \(pid \d+\)/g)?.length).toBe(summary.kills);
    expect(r.stderr).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\//);
  }, 120_000);

  it('ends cleanly on Ctrl-C: a summary, no daemon left behind, the scratch folder gone', async () => {
    const child = spawn(process.execPath, [cli, 'demo', '--guests', '1', '--seconds', '60', '--image-mib', '32'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 30_000;
    while (!/running verifying workloads/.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const dir = /simulated Xen host with 1 guest\(s\) in (\S+)/.exec(stdout)![1];
    const daemonPid = Number(/daemon running \(pid (\d+)\)/.exec(stdout)![1]);
    expect(fs.existsSync(dir)).toBe(true);
    const t0 = Date.now();
    child.kill('SIGINT');
    expect(await closed).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(stdout).toMatch(/stopped early/);
    expect(stdout).toMatch(/^OK: every read verified/m);
    expect(fs.existsSync(dir)).toBe(false);
    expect(() => process.kill(daemonPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  }, 60_000);

  it('with --stay, prints the summary, then keeps the dashboard up until Ctrl-C', async () => {
    const child = spawn(process.execPath, [cli, 'demo', '--guests', '1', '--seconds', '2', '--kill-every', '0', '--image-mib', '32', '--stay', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 40_000;
    while (!stdout.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const summary = JSON.parse(stdout.split('\n')[0]) as DemoSummary;
    expect(summary).toMatchObject({ ok: true, kills: 0 });
    const state = (await (await fetch(new URL('api/state', summary.dashboard))).json()) as { devices: { key: string; summary: { phase: string } }[] };
    expect(state.devices.map((d) => [d.key, d.summary.phase])).toEqual([[summary.devices[0].device, 'attached.connected']]);
    child.kill('SIGINT');
    expect(await closed).toBe(0);
    await expect(fetch(summary.dashboard)).rejects.toThrow();
  }, 60_000);
});
