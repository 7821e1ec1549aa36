#!/usr/bin/env node
'use strict';
// `npm run test:xen`: builds dom0 and domU initramfs from Debian packages and this project,
// boots Xen + a PV dom0 under QEMU (TCG), runs a scenario of steps inside, and reports.
// Exit 0 only when every host stage and every scenario step passed.
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { execFileSync } = require('node:child_process');
const { parseArgs } = require('node:util');
const { RunLog, summarize, countsLine } = require('./lib/markers');
const { fileDigest, treeDigest, runLogged, cachedLayer, Stages } = require('./lib/cache');
const { boot } = require('./lib/qemu');
const { writeReport } = require('./lib/report');
const { splitRelayed } = require('./lib/relayed');
const { writeResults } = require('./lib/results');
const { buildIsCurrent } = require('./lib/freshness');

const PROJECT = path.resolve(__dirname, '../..');
const XEN_SCRIPTS = path.join(PROJECT, 'scripts/xen');

const USAGE = `usage: npm run test:xen -- [options]
  --scenario NAME      dom0 scenario (scripts/xen/dom0/scenarios/NAME.sh), default real-xen
  --budget SECONDS     limit for the whole run, default 1500 (QEMU gets what the host stages left)
  --timeout SECONDS    limit for the QEMU run (default: from --budget, at least 240)
  --artifacts DIR      where logs and the report go, default test-artifacts/xen
  --work DIR           scratch and cache folder, default .xen-work
  --skip-install       don't check the Debian packages
  --skip-build         don't run npm run build (use dist/ as it is)
  --rebuild            run npm run build even when dist/ is newer than its sources
  --no-docs            don't write docs/real-xen-results.md and the README block
  --update-fixtures    copy recorded sessions to test/fixtures/sessions/real-xen-*.jsonl
  --verbose            echo every console line, not only markers`;

function options(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'real-xen' },
      budget: { type: 'string', default: '1500' },
      timeout: { type: 'string' },
      artifacts: { type: 'string', default: path.join(PROJECT, 'test-artifacts/xen') },
      work: { type: 'string', default: path.join(PROJECT, '.xen-work') },
      'skip-install': { type: 'boolean', default: false },
      'skip-build': { type: 'boolean', default: false },
      rebuild: { type: 'boolean', default: false },
      'no-docs': { type: 'boolean', default: false },
      'update-fixtures': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  if (!/^[a-z0-9-]+$/.test(values.scenario)) throw new Error(`bad scenario name '${values.scenario}'`);
  if (!fs.existsSync(path.join(XEN_SCRIPTS, 'dom0/scenarios', `${values.scenario}.sh`))) {
    throw new Error(`no scenario scripts/xen/dom0/scenarios/${values.scenario}.sh`);
  }
  const seconds = (name) => {
    const n = Number(values[name]);
    if (!(n > 0)) throw new Error(`--${name} wants a number of seconds, got '${values[name]}'`);
    return n;
  };
  const budget = seconds('budget');
  const timeout = values.timeout === undefined ? undefined : seconds('timeout');
  return { ...values, budget, timeout, artifacts: path.resolve(values.artifacts), work: path.resolve(values.work) };
}

const started = process.hrtime.bigint();
let activeQemu; // killed if this process is interrupted
const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
const print = (s) => process.stdout.write(`[${elapsed().toFixed(1).padStart(6)}] ${s}\n`);

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
}

function kernelVersion() {
  const versions = fs
    .readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  if (versions.length === 0) throw new Error('no /boot/vmlinuz-*: is linux-image-amd64 installed?');
  return versions[versions.length - 1];
}

function packageVersions(pkgs) {
  return sh('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', ...pkgs]);
}

async function main() {
  const opt = options(process.argv.slice(2));
  fs.rmSync(opt.artifacts, { recursive: true, force: true });
  fs.mkdirSync(opt.artifacts, { recursive: true });
  const logs = path.join(opt.artifacts, 'build-logs');
  fs.mkdirSync(logs, { recursive: true });
  const cacheDir = path.join(opt.work, 'cache');
  const stages = new Stages(print);
  const report = {
    scenario: opt.scenario,
    versions: {},
    stages: stages.rows,
    initramfs: {},
    milestones: {},
    steps: [],
    infos: {},
  };
  const runLog = new RunLog();
  let qemuResult;
  let hostError;

  try {
    if (!opt['skip-install']) {
      await stages.run('install-packages', () =>
        runLogged('sh', [path.join(XEN_SCRIPTS, 'install-deps.sh')], { logFile: path.join(logs, 'install.log') }),
      );
    }
    if (!opt['skip-build']) {
      await stages.run('build-project', () => {
        const fresh = buildIsCurrent(PROJECT);
        if (fresh.current && !opt.rebuild) return { note: `skipped: ${fresh.why}` };
        runLogged('npm', ['run', 'build', '--silent'], { cwd: PROJECT, logFile: path.join(logs, 'npm-build.log') });
        return { note: 'built' };
      });
    }
    const kver = kernelVersion();
    const env = { PROJECT, KVER: kver };
    const layer = (name, script, inputs, extraEnv = {}) => {
      const r = cachedLayer({
        cacheDir,
        name,
        ext: 'cpio.zst',
        inputs: { ...inputs, script: treeDigest(XEN_SCRIPTS, ['build']) },
        build: (out) =>
          runLogged('sh', [path.join(XEN_SCRIPTS, 'build', script)], {
            env: { ...env, ...extraEnv, ROOT: path.join(opt.work, `root-${name}`), OUT: out },
            logFile: path.join(logs, `${name}.log`),
          }),
      });
      report.initramfs[name] = { ...r.stats, hit: r.hit };
      return r;
    };

    const xenElf = await stages.run('xen-elf', () => {
      const r = cachedLayer({
        cacheDir,
        name: 'xen',
        ext: 'elf',
        inputs: packageVersions(['xen-hypervisor-4.17-amd64']),
        build: (out) => fs.writeFileSync(out, zlib.gunzipSync(fs.readFileSync('/boot/xen-4.17-amd64.gz'))),
      });
      return { path: r.path, note: r.hit ? 'cached' : 'unpacked' };
    });

    // the kernel package too: a rebuilt kernel may keep its version string
    const pkgs = packageVersions(['busybox-static', 'xen-utils-4.17', 'xenstore-utils', 'libxenstore4', `linux-image-${kver}`]);
    const domu = await stages.run('initramfs-domu', () => {
      const r = layer('domu', 'domu.sh', {
        kver,
        pkgs,
        files: treeDigest(XEN_SCRIPTS, ['domu', 'guest']),
      });
      return { ...r, note: r.hit ? 'cached' : 'built' };
    });
    const dom0 = await stages.run('initramfs-dom0', () => {
      const nodeBin = fs.realpathSync(sh('sh', ['-c', 'command -v node']));
      // qemu-storage-daemon and qemu-img (qcow2 disks) come from these two
      const qemuPkgs = packageVersions(['qemu-system-common', 'qemu-utils']);
      const base = layer('dom0-base', 'dom0-base.sh', { kver, pkgs, qemuPkgs, node: fileDigest(nodeBin) });
      const lockFiles = ['package-lock.json', 'node_modules/.package-lock.json'].filter((f) =>
        fs.existsSync(path.join(PROJECT, f)),
      );
      const mods = layer('dom0-node-modules', 'dom0-node-modules.sh', {
        lock: treeDigest(PROJECT, lockFiles),
      });
      const app = layer(
        'dom0-app',
        'dom0-app.sh',
        {
          dist: treeDigest(PROJECT, ['dist', 'package.json']),
          files: treeDigest(XEN_SCRIPTS, ['dom0', 'guest', 'probe']),
          domu: domu.hash,
        },
        { DOMU_INITRD: domu.path },
      );
      // the kernel unpacks concatenated compressed cpio archives one after the other
      const out = path.join(opt.work, 'dom0-initrd.cpio.zst');
      fs.writeFileSync(out, Buffer.concat([base.path, mods.path, app.path].map((p) => fs.readFileSync(p))));
      const total = fs.statSync(out).size;
      report.initramfs['dom0 (all layers)'] = {
        bytes: total,
        unpackedBytes: [base, mods, app].reduce((s, l) => s + (l.stats.unpackedBytes ?? 0), 0),
        files: [base, mods, app].reduce((s, l) => s + (l.stats.files ?? 0), 0),
      };
      const built = [base, mods, app].filter((l) => !l.hit).length;
      return { path: out, note: `${(total / 1048576).toFixed(1)} MiB, ${built} of 3 layers rebuilt` };
    });

    report.versions.qemu = sh('qemu-system-x86_64', ['--version']).split('\n')[0];
    report.packages = packageVersions(['qemu-system-x86', 'xen-hypervisor-4.17-amd64', 'xen-utils-4.17', 'busybox-static', 'qemu-system-common', 'qemu-utils', `linux-image-${kver}`]).split('\n');
    qemuResult = await stages.run('boot-and-run', async () => {
      const q = boot({
        xenElf: xenElf.path,
        kernel: `/boot/vmlinuz-${kver}`,
        initrd: dom0.path,
        xenCmdline: 'dom0_mem=1024M,max:1024M console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all',
        dom0Cmdline: `console=hvc0 earlyprintk=xen xentest.scenario=${opt.scenario}`,
        memMiB: 3072,
        smp: 2,
        timeoutS: opt.timeout ?? Math.max(240, Math.floor(opt.budget - elapsed())),
        silenceS: 180,
        serialLog: path.join(opt.artifacts, 'serial.log'),
        onLine: (line, at, handle) => onConsoleLine(runLog, opt, line, at, handle),
      });
      activeQemu = q.process;
      fs.writeFileSync(path.join(opt.artifacts, 'qemu-command.txt'), ['qemu-system-x86_64', ...q.args].join(' ') + '\n');
      const r = await q.done;
      if (r.stopReason) throw new Error(`QEMU stopped: ${r.stopReason}`);
      if (runLog.poweroffAt === undefined) throw new Error(`QEMU exited (${r.code ?? r.signal}) before dom0 powered off`);
      return { ...r, note: `QEMU ran ${r.seconds.toFixed(0)}s` };
    });
  } catch (err) {
    hostError = err;
  }

  // --- report ------------------------------------------------------------------------------
  const hostRows = stages.rows.map((s) => ({ origin: 'host', step: s.name, status: s.status, detail: s.detail, seconds: s.seconds }));
  const guestRows = runLog.results();
  if (qemuResult || stages.rows.some((s) => s.name === 'boot-and-run')) {
    if (!runLog.origins.has('dom0') || !runLog.origins.get('dom0').plan) {
      guestRows.unshift({ origin: 'dom0', step: 'boot', status: 'FAIL', detail: 'dom0 never printed its plan' });
    }
  }
  const rows = [...hostRows, ...guestRows];
  const { perOrigin, total } = summarize(rows);
  const dom0 = runLog.origins.get('dom0');
  report.versions.xen = runLog.infos['xen-version'];
  report.versions.linux = runLog.infos['linux-version'];
  report.versions.node = runLog.infos['node-version'];
  report.milestones = {
    'dom0 /init started': dom0?.bootAt,
    'dom0 ready (xenstored, xen-init-dom0, xenconsoled)': stepEnd(runLog, 'dom0', 'xenconsoled'),
    'domU created': stepEnd(runLog, 'dom0', 'domu-create'),
    'dom0 powered off': runLog.poweroffAt,
  };
  report.steps = rows;
  report.infos = runLog.infos;
  report.heartbeats = runLog.heartbeats;
  report.wallSeconds = elapsed();
  report.finishedAt = new Date().toISOString();
  report.summary = `xen: ${countsLine(total)}`;
  writeReport(opt.artifacts, report);
  const sessions = splitRelayedLogs(opt.artifacts);
  const notes = [];
  if (opt['update-fixtures']) {
    const dir = path.join(PROJECT, 'test/fixtures/sessions');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of sessions) {
      fs.copyFileSync(f, path.join(dir, path.basename(f)));
      notes.push(`copied ${path.basename(f)} to ${path.relative(PROJECT, dir)}`);
    }
  }
  if (opt.scenario === 'real-xen' && !opt['no-docs'] && runLog.origins.has('dom0')) {
    notes.push(...writeResults(report, { docsFile: path.join(PROJECT, 'docs/real-xen-results.md'), readmeFile: path.join(PROJECT, 'README.md') }));
  }

  process.stdout.write('\n');
  for (const r of rows) {
    if (r.status !== 'PASS') process.stdout.write(`${r.status} ${r.origin}:${r.step} ${r.detail ?? ''}\n`);
  }
  for (const [k, v] of Object.entries(report.milestones)) {
    if (v !== undefined) process.stdout.write(`${k}: ${v.toFixed(1)} s after QEMU start\n`);
  }
  process.stdout.write(`versions: ${Object.entries(report.versions).map(([k, v]) => `${k} ${v ?? '?'}`).join('; ')}\n`);
  process.stdout.write(`artifacts: ${path.relative(process.cwd(), opt.artifacts) || '.'} (serial.log, report.md, report.json)\n`);
  for (const n of notes) process.stdout.write(`${n}\n`);
  process.stdout.write(`wall time: ${elapsed().toFixed(0)} s\n`);
  for (const [origin, c] of perOrigin) process.stdout.write(`${origin}: ${countsLine(c)}\n`);
  process.stdout.write(`xen: ${countsLine(total)}\n`);
  const ok = !hostError && total.failed === 0 && guestRows.length > 0;
  return ok ? 0 : 1;
}

function stepEnd(runLog, origin, step) {
  return runLog.origins.get(origin)?.steps?.get(step)?.endedAt;
}

function onConsoleLine(runLog, opt, line, at, handle) {
  const parsed = runLog.feed(line, at);
  if (opt.verbose) print(`| ${line}`);
  else if (parsed.marker && parsed.marker.kind !== 'HEARTBEAT') {
    print(`${parsed.origin} ${parsed.text.slice('XENTEST '.length)}`);
  }
  // dom0 powered off: Xen should end QEMU at once; don't wait forever if it doesn't
  if (parsed.marker?.kind === 'POWEROFF' && parsed.origin === 'dom0') {
    setTimeout(() => handle.stop('still running 60s after dom0 powered off'), 60000).unref();
  }
}

/** One file per relayed origin; recorded sessions ("session.<name>") go to sessions/<name>.jsonl. */
function splitRelayedLogs(dir) {
  const serial = path.join(dir, 'serial.log');
  const sessions = [];
  if (!fs.existsSync(serial)) return sessions;
  for (const [origin, lines] of splitRelayed(fs.readFileSync(serial, 'utf8'))) {
    let file = path.join(dir, `${origin}.log`);
    if (origin.startsWith('session.')) {
      fs.mkdirSync(path.join(dir, 'sessions'), { recursive: true });
      file = path.join(dir, 'sessions', `${origin.slice('session.'.length)}.jsonl`);
      sessions.push(file);
    }
    fs.writeFileSync(file, lines.join('\n') + '\n');
  }
  return sessions;
}

process.on('exit', () => {
  if (activeQemu && activeQemu.exitCode === null) activeQemu.kill('SIGKILL');
});
let exiting = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (exiting) return;
    exiting = true;
    print(`${sig}: stopping`);
    if (activeQemu && activeQemu.exitCode === null) activeQemu.kill('SIGKILL');
    process.exit(130);
  });
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`test:xen: ${err.message}\n`);
    process.exitCode = 2;
  },
);
