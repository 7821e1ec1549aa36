// How one qemu-storage-daemon is started: its id, its files in the state folder, its command
// line. Pure but for probe(), which looks at the image once before a start.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TargetSpec } from '../target';

export type QsdTarget = Extract<TargetSpec, { driver: 'qsd' }>;

export const DEFAULT_QSD_BINARY = '/usr/bin/qemu-storage-daemon';
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Deterministic: a restarted xenblkd finds the daemon serving the same canonical target. */
export function qsdId(canonicalTarget: string): string {
  return `qsd-${createHash('sha256').update(canonicalTarget).digest('hex').slice(0, 16)}`;
}

export interface QsdPaths {
  readonly socket: string;
  readonly qmp: string;
  readonly pidFile: string;
  readonly logFile: string;
}

export function qsdPaths(dir: string, id: string): QsdPaths {
  const base = path.join(dir, id);
  return { socket: `${base}.nbd.sock`, qmp: `${base}.qmp.sock`, pidFile: `${base}.pid`, logFile: `${base}.log` };
}

/** null, or why the state folder is too deep for unix socket paths. */
export function socketPathProblem(dir: string): string | null {
  const longest = qsdPaths(dir, qsdId('')).qmp;
  return Buffer.byteLength(longest) > MAX_SOCKET_PATH
    ? `the qsd state folder ${dir} is too long for unix socket paths (${MAX_SOCKET_PATH} bytes at most)`
    : null;
}

/** QEMU's option syntax: a comma inside a value is written twice. */
function optValue(text: string): string {
  return text.replace(/,/g, ',,');
}

export interface ImageProbe {
  readonly blockDevice: boolean;
  /** O_DIRECT opens there (not on tmpfs, for one); then aio=native too. */
  readonly direct: boolean;
}

/** Looks at the image: a block device or a file, and whether O_DIRECT works on it. */
export function probe(imagePath: string, wantDirect: boolean): ImageProbe {
  const st = fs.statSync(imagePath);
  if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  let direct = false;
  if (wantDirect) {
    try {
      fs.closeSync(fs.openSync(imagePath, fs.constants.O_RDONLY | fs.constants.O_DIRECT));
      direct = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }
  return { blockDevice: st.isBlockDevice(), direct };
}

/** The --nbd-server argument; adoption also looks for it in /proc/PID/cmdline. */
export function nbdServerArg(socket: string): string {
  return `addr.type=unix,addr.path=${optValue(socket)}`;
}

export function qsdArgs(spec: QsdTarget, id: string, paths: QsdPaths, readOnly: boolean, p: ImageProbe): string[] {
  const ro = readOnly ? 'on' : 'off';
  const cache = p.direct ? 'cache.direct=on,aio=native' : 'cache.direct=off,aio=threads';
  const protocol = p.blockDevice ? 'host_device' : 'file';
  return [
    // The image nodes come first: a locked or broken image fails before the socket is touched
    // (QEMU unlinks an existing socket path when it listens).
    '--blockdev', `driver=${protocol},node-name=proto,filename=${optValue(spec.path)},${cache},read-only=${ro},discard=unmap`,
    '--blockdev', `driver=${spec.format},node-name=fmt,file=proto,read-only=${ro},discard=unmap,detect-zeroes=off`,
    '--nbd-server', nbdServerArg(paths.socket),
    // writethrough: a write is acknowledged once it (and the format's metadata for it) is on
    // the image, so a storage daemon that dies loses nothing the guest was told was written.
    '--export', `type=nbd,id=export,node-name=fmt,name=${id},writable=${readOnly ? 'off' : 'on'},writethrough=on`,
    '--chardev', `socket,id=qmp,path=${optValue(paths.qmp)},server=on,wait=off`,
    '--monitor', 'chardev=qmp',
    // Written last, once every option above took effect: the daemon is then ready.
    '--pidfile', paths.pidFile,
  ];
}
