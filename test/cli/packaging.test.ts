// What ships for a dom0: the config file format and its precedence (through the real daemon),
// the systemd unit (systemd-analyze verify), and libxl's hotplug script (real xenstore-utils
// against the embedded xenstored).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG_KEYS, parseConfig, parseListen } from '../../src/cli/config';
import { UserError } from '../../src/cli/command';
import { daemonWorld, until } from '../e2e/support/daemon-world';
import { tempDir } from '../support/temp';

const root = path.join(__dirname, '../..');
const cli = path.join(root, 'dist/cli/main.js');
const shippedConf = fs.readFileSync(path.join(root, 'packaging/xenblkd.conf'), 'utf8');

describe('config file', () => {
  it('parses key = value lines with comments and blank lines', () => {
    expect(parseConfig('# comment\n\nstate-dir = /srv/xenblkd  # trailing\nhttp=127.0.0.1:9000\n', 'f')).toEqual({ 'state-dir': '/srv/xenblkd', http: '127.0.0.1:9000' });
  });

  it('names the file and line of a mistake', () => {
    expect(() => parseConfig('state-dir = /x\nnot a pair\n', 'my.conf')).toThrow(new UserError("my.conf:2: expected 'key = value', got 'not a pair'"));
    expect(() => parseConfig('colour = blue\n', 'my.conf')).toThrow(/my\.conf:1: unknown key 'colour'/);
  });

  it('ships a file that parses, documenting every key as a commented default', () => {
    expect(parseConfig(shippedConf, 'xenblkd.conf')).toEqual({});
    const documented = [...shippedConf.matchAll(/^# ([a-z-]+) = /gm)].map((m) => m[1]);
    // record belongs to `xenblkd record` (another branch); the others are run's options.
    expect(documented.sort()).toEqual(CONFIG_KEYS.filter((k) => k !== 'record' && k !== 'sim').sort());
    const uncommented = shippedConf.split('\n').map((l) => l.replace(/^# (?=[a-z-]+ = )/, '')).join('\n');
    expect(Object.keys(parseConfig(uncommented, 'uncommented')).sort()).toEqual(documented.sort());
    expect(() => parseConfig(uncommented, 'uncommented')).not.toThrow();
  });

  it('reads listen addresses as HOST:PORT, :PORT, PORT or [v6]:PORT', () => {
    expect(parseListen('0.0.0.0:8455')).toEqual({ host: '0.0.0.0', port: 8455 });
    expect(parseListen(':8455')).toEqual({ host: '127.0.0.1', port: 8455 });
    expect(parseListen('8455')).toEqual({ host: '127.0.0.1', port: 8455 });
    expect(parseListen('[::1]:8455')).toEqual({ host: '::1', port: 8455 });
    expect(() => parseListen('8455:host')).toThrow(UserError);
    expect(() => parseListen('localhost:99999')).toThrow(UserError);
    expect(() => parseListen('a:b:1')).toThrow(UserError);
  });

  it('is applied by the daemon, and the command line overrides it', async () => {
    const dir = tempDir('xenblkd-conf-');
    const conf = path.join(dir, 'xenblkd.conf');
    // The file asks for a dashboard on one port and ring order 2; the command line moves the dashboard.
    fs.writeFileSync(conf, 'http = 127.0.0.1:1\nmax-ring-page-order = 2\nmax-indirect-segments = 32\n');
    const world = await daemonWorld({ http: false, extraArgs: ['--config', conf, '--http', '127.0.0.1:0'] });
    try {
      expect(await world.dashboardUrl()).not.toBe('http://127.0.0.1:1/');
      const be = `/local/domain/0/backend/vbd/${world.disks[0].domid}/${world.disks[0].devid}`;
      expect(await world.toolstack.read(`${be}/max-ring-page-order`)).toBe('2');
      expect(await world.toolstack.read(`${be}/feature-max-indirect-segments`)).toBe('32');
    } finally {
      await world.close();
    }
  }, 60_000);
});

describe('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    const dir = tempDir('xenblkd-unit-');
    // The unit as installed: ExecStart names an executable; xenstored.service comes with Xen.
    const bin = path.join(dir, 'xenblkd');
    fs.writeFileSync(bin, `#!/bin/sh\nexec ${process.execPath} ${cli} "$@"\n`, { mode: 0o755 });
    const unit = fs.readFileSync(path.join(root, 'packaging/xenblkd.service'), 'utf8');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/xenblkd run --config \/etc\/xenblkd\/xenblkd\.conf/m);
    fs.writeFileSync(path.join(dir, 'xenblkd.service'), unit.replace('/usr/bin/xenblkd', bin));
    fs.writeFileSync(path.join(dir, 'xenstored.service'), '[Unit]\nDescription=xenstored\n[Service]\nExecStart=/bin/true\n');
    const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'xenblkd.service')], { encoding: 'utf8', env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` } });
    expect(r.stderr.split('\n').filter((l) => l.includes('xenblkd'))).toEqual([]);
    expect(r.status).toBe(0);
  });
});

describe('libxl hotplug script (packaging/xenblkd-hotplug) with xenstore-utils', () => {
  const script = path.join(root, 'packaging/xenblkd-hotplug');
  const dir = tempDir('xenblkd-hotplug-');
  const socket = path.join(dir, 'xenstored.sock');
  const be = '/local/domain/0/backend/vbd/1/51712';
  let xenstored: ChildProcess;
  const env = { ...process.env, XENSTORED_PATH: socket, XENBUS_PATH: be };
  const xs = (...args: string[]) => spawnSync(args[0], args.slice(1), { encoding: 'utf8', env });
  const hotplug = (action: string) => spawnSync(script, [action], { encoding: 'utf8', env });

  beforeAll(async () => {
    xenstored = spawn(process.execPath, [cli, 'xenstored', '--socket', socket], { stdio: 'ignore' });
    await until(() => fs.existsSync(socket), 'xenstored');
  });
  afterAll(async () => {
    const gone = new Promise((r) => xenstored.once('exit', r));
    xenstored.kill('SIGTERM');
    await gone;
  });

  it('tells libxl a present image is connected', () => {
    const image = path.join(dir, 'disk.img');
    fs.writeFileSync(image, Buffer.alloc(4096));
    expect(xs('xenstore-write', `${be}/params`, image, `${be}/mode`, 'w').status).toBe(0);
    const r = hotplug('add');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(xs('xenstore-read', `${be}/hotplug-status`).stdout).toBe('connected\n');
    expect(xs('xenstore-read', `${be}/physical-device-path`).stdout).toBe(`${image}\n`);
    expect(hotplug('remove').status).toBe(0);
  });

  it('reports a missing image as a hotplug error that libxl shows', () => {
    expect(xs('xenstore-write', `${be}/params`, path.join(dir, 'missing.img'), `${be}/hotplug-status`, '').status).toBe(0);
    const r = hotplug('add');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/missing\.img does not exist/);
    expect(xs('xenstore-read', `${be}/hotplug-status`).stdout).toBe('error\n');
    expect(xs('xenstore-read', `${be}/hotplug-error`).stdout).toMatch(/missing\.img does not exist/);
  });

  it('checks the file behind a format prefix, and leaves network targets to the daemon', () => {
    const qcow2 = path.join(dir, 'disk.qcow2');
    fs.writeFileSync(qcow2, Buffer.alloc(4096));
    expect(xs('xenstore-write', `${be}/params`, `qcow2:${qcow2}`, `${be}/hotplug-status`, '').status).toBe(0);
    expect(hotplug('add').status).toBe(0);
    expect(xs('xenstore-read', `${be}/physical-device-path`).stdout).toBe(`${qcow2}\n`);
    expect(xs('xenstore-write', `${be}/params`, `qcow2:${path.join(dir, 'gone.qcow2')}`, `${be}/hotplug-status`, '').status).toBe(0);
    expect(hotplug('add').stderr).toMatch(/gone\.qcow2 does not exist/);
    for (const target of ['rbd:pool/vm1:conf=/etc/ceph/ceph.conf', 'nbd:unix:/run/nbd.sock', 'aio:rbd:pool/vm1']) {
      expect(xs('xenstore-write', `${be}/params`, target, `${be}/hotplug-status`, '').status).toBe(0);
      const r = hotplug('add');
      expect({ target, status: r.status, stderr: r.stderr }).toEqual({ target, status: 0, stderr: '' });
      expect(xs('xenstore-read', `${be}/hotplug-status`).stdout).toBe('connected\n');
    }
  });

  it('refuses to run outside libxl', () => {
    const r = spawnSync(script, ['add'], { encoding: 'utf8', env: { ...process.env, XENBUS_PATH: '' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/XENBUS_PATH is not set/);
  });
});
