'use strict';
// Boots Xen + dom0 under qemu-system-x86_64 (TCG) and streams the serial console as lines.
const fs = require('node:fs');
const { spawn } = require('node:child_process');

// -cpu max crashes a PV dom0 under TCG (SMAP/SMEP); without xsave busybox stops segfaulting;
// PVH would need -rdtscp (kept off for the same CPU model everywhere).
const CPU = 'max,-smap,-smep,-rdtscp,-xsave';

function qemuArgs({ xenElf, kernel, initrd, xenCmdline, dom0Cmdline, memMiB, smp }) {
  // multiboot modules are comma-separated: a comma inside a command line must be doubled
  const mod = `${kernel} ${dom0Cmdline.replace(/,/g, ',,')},${initrd}`;
  return [
    '-machine', 'q35', '-cpu', CPU, '-m', String(memMiB), '-smp', String(smp),
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-nic', 'none', '-no-reboot',
    '-kernel', xenElf, '-append', xenCmdline, '-initrd', mod,
  ];
}

/**
 * Runs QEMU until it exits or is stopped. onLine(line, seconds) sees every console line and
 * may call boot.stop(reason). Resolves { code, signal, seconds, stopReason }.
 */
function boot(opts) {
  const { qemu = 'qemu-system-x86_64', serialLog, onLine, timeoutS, silenceS } = opts;
  const args = qemuArgs(opts);
  const log = fs.openSync(serialLog, 'w');
  const t0 = process.hrtime.bigint();
  const now = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stopReason;
  let lastOutput = 0;
  let killTimer;
  const stop = (reason) => {
    if (stopReason || child.exitCode !== null) return;
    stopReason = reason;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
  };
  const handle = { args, stop, process: child };

  const lineReader = (prefix) => {
    let rest = '';
    return (chunk) => {
      lastOutput = now();
      rest += chunk.toString('utf8');
      let nl;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = prefix + rest.slice(0, nl).replace(/\r/g, '');
        rest = rest.slice(nl + 1);
        const at = now();
        fs.writeSync(log, `[${at.toFixed(2).padStart(7)}] ${line}\n`);
        onLine(line, at, handle);
      }
    };
  };
  child.stdout.on('data', lineReader(''));
  child.stderr.on('data', lineReader('qemu-stderr| '));

  const timers = [
    setTimeout(() => stop(`overall timeout of ${timeoutS}s`), timeoutS * 1000),
    setInterval(() => {
      if (now() - lastOutput > silenceS) stop(`no console output for ${silenceS}s`);
    }, 1000),
  ];
  const done = new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`${qemu}: ${err.message}`)));
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t), clearInterval(t);
      clearTimeout(killTimer);
      fs.closeSync(log);
      resolve({ code, signal, seconds: now(), stopReason });
    });
  });
  handle.done = done;
  return handle;
}

module.exports = { boot, qemuArgs, CPU };
