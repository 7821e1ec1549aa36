// Every mistake a user can make, through the real CLI: one line on stderr, a non-zero exit, no
// stack trace. The peers are real: an embedded xenstored and a simulated Xen host in child
// processes, a daemon holding its state folder, a socket holding a port.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { controlRequest } from '../../src/daemon/control';
import * as os from 'node:os';

const cli = path.join(__dirname, '../../dist/cli/main.js');
// Not support/temp's tempDir: the immutable image must lose its flag before the folder goes.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-cli-errors-'));
const children: ChildProcess[] = [];

function xenblkd(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env, XENSTORED_PATH: path.join(dir, 'no-xenstored.sock') } });
}

function start(args: string[], logName: string): ChildProcess {
  const log = fs.openSync(path.join(dir, logName), 'a');
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  children.push(child);
  return child;
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve().then(check).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const simDir = path.join(dir, 'sim');
const simXs = path.join(dir, 'sim-xenstored.sock');
const hvSock = path.join(simDir, 'hv.sock');
const xsOnly = path.join(dir, 'xenstored.sock');
const lockedState = path.join(dir, 'daemon-state');
const image = path.join(dir, 'disk.img');
const immutable = path.join(dir, 'immutable.img');
const aFile = path.join(dir, 'a-file');
let busyPort = 0;
let busy: net.Server;

beforeAll(async () => {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 1 << 20);
  fs.writeFileSync(immutable, '');
  fs.truncateSync(immutable, 1 << 20);
  spawnSync('chattr', ['+i', immutable]);
  fs.writeFileSync(aFile, 'not a folder\n');
  start(['xenstored', '--socket', xsOnly], 'xenstored.log');
  start(['sim', '--socket', simXs, '--state-dir', simDir, '--guests', '1'], 'sim.log');
  await waitFor(() => fs.existsSync(xsOnly) && fs.existsSync(hvSock), 'xenstored and sim');
  const daemon = start(['run', '--sim', hvSock, '--xenstore', simXs, '--state-dir', lockedState, '--log-format', 'json'], 'daemon.log');
  await waitFor(async () => ((await controlRequest(path.join(lockedState, 'control.sock'), { op: 'ping' }, 1000)) as { pid: number }).pid === daemon.pid, 'the daemon');
  busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  busyPort = (busy.address() as net.AddressInfo).port;
  // A disk that exists, for "already attached".
  const r = xenblkd(['attach', '--domid', '1', '--vdev', 'xvdb', '--image', image, '--xenstore', simXs]);
  if (r.status !== 0) throw new Error(`attach failed: ${r.stderr}`);
}, 60_000);

afterAll(async () => {
  busy?.close();
  await Promise.all(
    children.reverse().map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
  spawnSync('chattr', ['-i', immutable]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const config = (name: string, text: string) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
};

// [what, argv (a function: some paths exist only after beforeAll), stderr pattern]
const mistakes: [string, () => string[], RegExp][] = [
  ['unknown command', () => ['frobnicate'], /unknown command 'frobnicate'/],
  ...['run', 'sim', 'xenstored', 'attach', 'detach', 'ls', 'viz', 'bench', 'demo', 'version'].map(
    (c): [string, () => string[], RegExp] => [`${c}: unknown option`, () => [c, '--bogus'], /Unknown option '--bogus'/],
  ),
  // run
  ['run: no xenstore', () => ['run', '--sim', hvSock, '--xenstore', path.join(dir, 'nope.sock'), '--state-dir', path.join(dir, 's1')], /cannot connect to xenstore at .*nope\.sock/],
  ['run: no simulated host', () => ['run', '--sim', path.join(dir, 'nope-hv.sock'), '--state-dir', path.join(dir, 's2')], /simulated host socket .* not found/],
  ['run: no /dev/xen', () => ['run', '--xenstore', xsOnly, '--state-dir', path.join(dir, 's3')], /--sim HVSOCK/],
  ['run: state folder locked', () => ['run', '--sim', hvSock, '--xenstore', simXs, '--state-dir', lockedState], /in use by another xenblkd/],
  ['run: state folder is a file', () => ['run', '--sim', hvSock, '--xenstore', simXs, '--state-dir', path.join(aFile, 'state')], /state folder .*ENOTDIR/],
  ['run: port in use for --http', () => ['run', '--sim', hvSock, '--xenstore', simXs, '--state-dir', path.join(dir, 's4'), '--http', `127.0.0.1:${busyPort}`], /cannot serve the dashboard on 127\.0\.0\.1:\d+: the port is in use/],
  ['run: bad --http', () => ['run', '--http', 'localhost:99999'], /--http takes HOST:PORT/],
  ['run: config file missing', () => ['run', '--config', path.join(dir, 'missing.conf')], /cannot read config file .*missing\.conf: ENOENT/],
  ['run: config file syntax', () => ['run', '--config', config('syntax.conf', 'state-dir /x\n')], /syntax\.conf:1: expected 'key = value'/],
  ['run: config file unknown key', () => ['run', '--config', config('key.conf', '# ok\nstate_dir = /x\n')], /key\.conf:2: (expected|unknown key)/],
  ['run: config file bad value', () => ['run', '--config', config('value.conf', 'max-ring-page-order = 9\n')], /--max-ring-page-order takes an integer in 0\.\.4, got '9'/],
  ['run: bad --backend-domid', () => ['run', '--backend-domid', 'dom0'], /--backend-domid takes an integer/],
  ['run: bad --backend-type', () => ['run', '--backend-type', '../etc'], /--backend-type takes a name/],
  ['run: bad --data-path', () => ['run', '--data-path', 'fast'], /--data-path takes auto, copy, map or persistent/],
  ['run: bad --feature-barrier', () => ['run', '--feature-barrier', 'maybe'], /--feature-barrier takes true or false/],
  ['run: bad --log-format', () => ['run', '--log-format', 'xml'], /--log-format takes json or pretty/],
  ['run: bad --log-level', () => ['run', '--log-level', 'loud'], /--log-level takes/],
  // attach
  ['attach: no xenstore', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', image, '--xenstore', path.join(dir, 'nope.sock')], /is xenstored running\?/],
  ['attach: image missing', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', path.join(dir, 'missing.img'), '--xenstore', simXs], /image .*missing\.img not found/],
  ['attach: image is a folder', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', dir, '--xenstore', simXs], /is not a regular file or a block device/],
  ['attach: image format not served', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', `qed:${image}`, '--xenstore', simXs], /--image: image format 'qed' is not served/],
  ['attach: rbd target malformed', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', 'rbd:onlypool', '--xenstore', simXs], /--image: rbd target 'onlypool' is not POOL\/IMAGE/],
  ['attach: qcow2 image missing', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', `qcow2:${path.join(dir, 'missing.qcow2')}`, '--xenstore', simXs], /image .*missing\.qcow2 not found/],
  ['attach: image unwritable', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', immutable, '--xenstore', simXs], /cannot be opened for writing \(EPERM\); attach it --read-only/],
  ['attach: bad vdev', () => ['attach', '--domid', '1', '--vdev', 'floppy', '--image', image, '--xenstore', simXs], /floppy/],
  ['attach: no --domid', () => ['attach', '--vdev', 'xvda', '--image', image], /--domid N is required/],
  ['attach: bad --domid', () => ['attach', '--domid', 'dom1', '--vdev', 'xvda', '--image', image], /--domid takes a domain id/],
  ['attach: no such domain', () => ['attach', '--domid', '7', '--vdev', 'xvda', '--image', image, '--xenstore', simXs], /domain 7 does not exist/],
  ['attach: vdev in use', () => ['attach', '--domid', '1', '--vdev', 'xvdb', '--image', image, '--xenstore', simXs], /already has a disk xvdb/],
  ['attach: bad --wait', () => ['attach', '--domid', '1', '--vdev', 'xvda', '--image', image, '--wait', 'soon'], /--wait takes a number of seconds/],
  // detach
  ['detach: no xenstore', () => ['detach', '--domid', '1', '--vdev', 'xvda', '--xenstore', path.join(dir, 'nope.sock')], /is xenstored running\?/],
  ['detach: bad vdev', () => ['detach', '--domid', '1', '--vdev', 'zz9', '--xenstore', simXs], /zz9/],
  ['detach: no such disk', () => ['detach', '--domid', '1', '--vdev', 'xvdc', '--xenstore', simXs], /no such disk/],
  ['detach: bad --timeout', () => ['detach', '--domid', '1', '--vdev', 'xvda', '--timeout', '0'], /--timeout takes a number of seconds/],
  // ls
  ['ls: no daemon', () => ['ls', '--state-dir', path.join(dir, 'no-daemon')], /no daemon is running \(no answer on .*control\.sock\)/],
  ['ls: no daemon, no xenstore', () => ['ls', '--state-dir', path.join(dir, 'no-daemon'), '--xenstore', path.join(dir, 'nope.sock')], /no daemon is running|is xenstored running\?/],
  ['ls: config file missing', () => ['ls', '--config', path.join(dir, 'missing.conf')], /cannot read config file/],
  // viz, bench
  ['viz: bad --format', () => ['viz', '--format', 'png', '--out', path.join(dir, 'viz')], /--format takes svg, mermaid, json or all/],
  ['viz: bad --machine', () => ['viz', '--machine', 'toaster', '--out', path.join(dir, 'viz')], /--machine takes bus, vbd, blkfront/],
  ['viz: unwritable --out', () => ['viz', '--out', path.join(aFile, 'viz')], /cannot create .*ENOTDIR|ENOTDIR/],
  ['bench: unknown benchmark', () => ['bench', 'disk'], /unknown benchmark 'disk'/],
  // demo
  ['demo: bad --guests', () => ['demo', '--guests', 'two'], /--guests takes a positive number/],
  ['demo: bad --seconds', () => ['demo', '--seconds=-1'], /--seconds takes a positive number/],
  ['demo: bad --kill-every', () => ['demo', '--kill-every', 'often'], /--kill-every takes a non-negative number/],
  ['demo: bad --http', () => ['demo', '--http', 'here'], /--http takes HOST:PORT/],
  ['demo: port in use for --http', () => ['demo', '--seconds', '1', '--http', `127.0.0.1:${busyPort}`, '--dir', path.join(dir, 'demo')], /the port is in use/],
  // sim, xenstored
  ['sim: no --socket', () => ['sim'], /--socket PATH is required/],
  ['sim: bad --guests', () => ['sim', '--socket', path.join(dir, 'x.sock'), '--guests', 'many'], /--guests takes 0\.\.1000/],
  ['sim: bad --workload', () => ['sim', '--socket', path.join(dir, 'x.sock'), '--workload', '{nope'], /--workload: not JSON/],
  ['sim: socket folder missing', () => ['sim', '--socket', path.join(dir, 'missing', 'x.sock'), '--state-dir', path.join(dir, 'sim2')], /cannot serve at .*x\.sock/],
  ['xenstored: no --socket', () => ['xenstored'], /--socket PATH is required/],
  ['xenstored: bad --domain-socket', () => ['xenstored', '--socket', path.join(dir, 'y.sock'), '--domain-socket', 'zero:/tmp/z'], /--domain-socket takes N:PATH/],
  ['xenstored: socket folder missing', () => ['xenstored', '--socket', path.join(dir, 'missing', 'y.sock')], /cannot listen/],
];

function isLogLine(line: string): boolean {
  try {
    return typeof (JSON.parse(line) as { level?: unknown }).level === 'number';
  } catch {
    return false;
  }
}

describe('every user mistake is one line on stderr and a non-zero exit', () => {
  it.each(mistakes)('%s', (_what, argv, pattern) => {
    const r = xenblkd(argv());
    expect(r.signal).toBeNull();
    // A daemon may have logged (JSON lines) before it met the mistake; the rest is the message.
    const lines = r.stderr.trimEnd().split('\n').filter((l) => !isLogLine(l));
    expect({ lines, status: r.status }).toEqual({ lines: [expect.stringMatching(pattern)], status: expect.any(Number) });
    expect(r.status).not.toBe(0);
    expect(lines[0]).toMatch(/^xenblkd: /);
    expect(lines[0]).not.toMatch(/internal error|\n\s+at /);
  });
});
