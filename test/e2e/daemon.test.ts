// The daemon as a dom0 operator meets it: systemd readiness over NOTIFY_SOCKET (received by
// python), `xenblkd ls`, /metrics moving with real guest I/O, and a graceful SIGTERM after which
// the devices stay Connected and a new daemon resumes them without the guests noticing.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { DeviceListing } from '../../src/daemon/serve';
import { CLI, SMALL_WORKLOAD, daemonWorld, until, type DaemonWorld } from './support/daemon-world';

jest.setTimeout(60_000);

const NOTIFY_RECEIVER = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`;

/** The value of one sample of the Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function sum(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('a running daemon, as an operator sees it', () => {
  let world: DaemonWorld;
  let receiver: ChildProcess;
  const messages: string[] = [];
  const notifyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-notify-'));
  const notifySocket = path.join(notifyDir, 'notify.sock');
  const metrics = async () => (await fetch(new URL('metrics', await world.dashboardUrl()))).text();
  const ls = (...args: string[]) => spawnSync(process.execPath, [CLI, 'ls', '--state-dir', world.stateDir, ...args], { encoding: 'utf8', timeout: 15_000 });
  // Asynchronous: the xenstored it talks to with --xenstore lives in this process.
  const lsAsync = (...args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'ls', '--state-dir', world.stateDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });

  beforeAll(async () => {
    receiver = spawn('python3', ['-c', NOTIFY_RECEIVER, notifySocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: receiver.stdout! });
    await new Promise<void>((resolve) => lines.once('line', () => resolve()));
    lines.on('line', (l) => messages.push(JSON.parse(l) as string));
    world = await daemonWorld({ guests: 2, daemonEnv: { NOTIFY_SOCKET: notifySocket } });
  });

  afterAll(async () => {
    await world?.close();
    receiver?.kill();
    fs.rmSync(notifyDir, { recursive: true, force: true });
  });

  it('tells systemd it is ready once it serves (sd_notify READY=1)', async () => {
    await until(() => messages.some((m) => m.split('\n').includes('READY=1')), 'READY=1', 5000);
    expect(messages.find((m) => m.includes('READY=1'))).toMatch(/STATUS=serving \d+ device\(s\); dashboard http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('lists its devices, their states and counters with xenblkd ls', async () => {
    const reports = await Promise.all(world.disks.map((d) => world.workload(d, { ...SMALL_WORKLOAD, durationMs: 1500 })));
    for (const r of reports) expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost }).toEqual({ errors: 0, mismatches: 0, lost: 0 });
    const json = ls('--json');
    expect(json.status).toBe(0);
    const devices = JSON.parse(json.stdout) as DeviceListing[];
    expect(devices.map((d) => d.key).sort()).toEqual(world.disks.map((d) => d.key).sort());
    for (const [i, disk] of world.disks.entries()) {
      const d = devices.find((x) => x.key === disk.key)!;
      expect(d).toMatchObject({ phase: 'attached.connected', backendState: 4, frontendState: 4, online: true, image: disk.image });
      expect(d.stats!.rdReq).toBeGreaterThanOrEqual(reports[i].reads);
      expect(d.stats!.wrReq).toBeGreaterThanOrEqual(reports[i].writes);
      expect(d.stats!.rdSect * 512).toBeGreaterThanOrEqual(reports[i].bytesRead);
      expect(d.stats!.errors).toBe(0);
    }
    const table = ls();
    expect(table.status).toBe(0);
    const rows = table.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^DEVICE\s+PHASE\s+BACKEND\s+FRONTEND\s+ONLINE\s+READS\s+WRITES/);
    for (const disk of world.disks) expect(rows.find((r) => r.startsWith(disk.key))).toMatch(/attached\.connected\s+4 Connected\s+4 Connected\s+yes\s+\d+/);
  });

  it('exposes Prometheus metrics on /metrics whose counters move with the guests I/O', async () => {
    const before = await metrics();
    const key = world.disks[0].key;
    const label = `device="${key}"`;
    const r0 = sample(before, 'xenblkd_device_read_requests_total', label)!;
    const w0 = sample(before, 'xenblkd_device_written_sectors_total', label)!;
    expect(r0).toBeGreaterThan(0);
    const report = await world.workload(world.disks[0], { ...SMALL_WORKLOAD, durationMs: 800 });
    expect({ errors: report.errors, mismatches: report.mismatches }).toEqual({ errors: 0, mismatches: 0 });
    const after = await metrics();
    expect(sample(after, 'xenblkd_device_read_requests_total', label)! - r0).toBeGreaterThanOrEqual(report.reads);
    expect(sample(after, 'xenblkd_device_written_sectors_total', label)! - w0).toBeGreaterThanOrEqual(report.bytesWritten / 512);
    expect(sample(after, 'xenblkd_device_backend_state', label)).toBe(4);
    expect(sample(after, 'xenblkd_device_connected', label)).toBe(1);
    const p50 = sample(after, 'xenblkd_device_request_latency_seconds', `${label},quantile="0.5"`)!;
    const p99 = sample(after, 'xenblkd_device_request_latency_seconds', `${label},quantile="0.99"`)!;
    expect(p50).toBeGreaterThan(0);
    expect(p99).toBeGreaterThanOrEqual(p50);
    expect(p99).toBeLessThan(30);
    expect(sample(after, 'xenblkd_devices')).toBe(2);
    expect(sample(after, 'xenblkd_event_store_bytes')).toBeGreaterThan(0);
    expect(sum(after, 'xenblkd_transitions_total')).toBeGreaterThan(0);
    expect(after).toMatch(/^# TYPE xenblkd_device_read_requests_total counter$/m);
  });

  it('stops gracefully on SIGTERM: exit 0, devices stay Connected, and a new daemon resumes them', async () => {
    const queuesBefore = world.disks.map((d) => d.queues);
    expect(await world.daemon.stop()).toBe(0);
    expect(messages.some((m) => m.split('\n').includes('STOPPING=1'))).toBe(true);
    for (const d of world.disks) {
      expect(await world.toolstack.read(`/local/domain/0/backend/vbd/${d.domid}/${d.devid}/state`)).toBe('4');
      expect(await world.toolstack.read(`/local/domain/${d.domid}/device/vbd/${d.devid}/state`)).toBe('4');
    }
    await world.daemon.start();
    const devices = JSON.parse(ls('--json').stdout) as DeviceListing[];
    expect(devices.map((d) => d.phase)).toEqual(world.disks.map(() => 'attached.connected'));
    const reports = await Promise.all(world.disks.map((d) => world.workload(d, { ...SMALL_WORKLOAD, durationMs: 800 })));
    for (const r of reports) {
      expect(r.ops).toBeGreaterThan(0);
      expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated }).toEqual({ errors: 0, mismatches: 0, lost: 0, duplicated: 0 });
    }
    // The guests never reconnected: the same queues served before and after.
    expect(world.disks.map((d) => d.queues)).toEqual(queuesBefore);
    const text = await metrics();
    for (const d of world.disks) expect(sample(text, 'xenblkd_recoveries_total', `device="${d.key}"`)).toBe(1);
  });

  it('logs structured JSON lines', () => {
    const lines = fs.readFileSync(path.join(world.dir, 'daemon.log'), 'utf8').trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as { level: number; time: number; name: string; msg: string });
    for (const r of records) expect(r).toEqual(expect.objectContaining({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) }));
    expect(records.filter((r) => r.msg.startsWith('serving backend/vbd of domain 0'))).toHaveLength(2);
    expect(records.some((r) => r.msg.includes('2 device(s) recovered'))).toBe(true);
    expect(records.some((r) => r.msg.startsWith('stopping'))).toBe(true);
  });

  it('without a daemon, ls says so in one line, and lists the disks in xenstore with --xenstore', async () => {
    expect(await world.daemon.stop()).toBe(0);
    const bare = ls();
    expect(bare.status).toBe(1);
    expect(bare.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^xenblkd: no daemon is running \(no answer on .*control\.sock\)/)]);
    const r = await lsAsync('--xenstore', world.xenstoreSocket);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/no daemon is running .*; the disks in xenstore:/);
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^DEVICE\s+BACKEND\s+IMAGE$/);
    for (const d of world.disks) expect(rows).toContainEqual(expect.stringMatching(new RegExp(`^${d.key}\\s+4 Connected\\s+${d.image}$`)));
    const json = JSON.parse((await lsAsync('--xenstore', world.xenstoreSocket, '--json')).stdout) as { frontendDomid: number; devid: number; state: string; params: string }[];
    expect(json.map((d) => `${d.frontendDomid}/${d.devid} ${d.state} ${d.params}`).sort()).toEqual(world.disks.map((d) => `${d.key} 4 ${d.image}`).sort());
  });
});
