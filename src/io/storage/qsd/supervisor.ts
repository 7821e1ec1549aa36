// Starts, adopts, watches and stops the qemu-storage-daemons serving xenblkd's image files. Each
// daemon runs in its own session (detached), so a SIGKILL of xenblkd or of its process group
// leaves it serving; the journal lets the next xenblkd adopt it instead of starting another.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { XsLogger } from '../../xs/logger';
import { openErrorMessage, StorageError } from '../errors';
import { formatTarget, parseTarget } from '../target';
import { DEFAULT_QSD_BINARY, probe, qsdArgs, qsdId, qsdPaths, socketPathProblem, type QsdTarget } from './command';
import type { QsdJournal, QsdRecord } from './journal';
import { exportReadOnly, isOurDaemon, waitUntilGone } from './proc';
import { qmpQuit } from './qmp';
import { reasonFromLog, startError } from './start-error';

export interface QsdSupervisorOptions {
  /** State folder subdirectory: sockets, pid files, logs. */
  readonly dir: string;
  readonly journal: QsdJournal;
  readonly log: XsLogger;
  readonly binary?: string;
  /** Try O_DIRECT (default true). */
  readonly direct?: boolean;
  /** How long a start may take before it counts as failed (ms). */
  readonly startTimeoutMs?: number;
}

/** Adopted daemons are not our children: no exit event, so /proc is polled. */
const ADOPTED_POLL_MS = 500;
const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5000;
/** This many deaths within the window is a crash loop: give up. */
const CRASH_LOOP_DEATHS = 5;
const CRASH_LOOP_WINDOW_MS = 60_000;
const QMP_QUIT_MS = 2000;
const EXIT_WAIT_MS = 3000;
const MAX_LOG_BYTES = 1024 * 1024;

/** What `xenblkd ls`, the dashboard and /metrics can show per daemon. */
export interface QsdStatus {
  readonly record: QsdRecord;
  /** running; restarting (backoff after a death); gave-up (a crash loop: its disk fails). */
  readonly state: 'running' | 'restarting' | 'gave-up';
  /** Deaths within the crash-loop window. */
  readonly recentDeaths: number;
  /** How the last death or failed restart went; null if none. */
  readonly lastFailure: string | null;
}

interface Watched {
  record: QsdRecord;
  readonly spec: QsdTarget;
  child: ChildProcess | null;
  poll: NodeJS.Timeout | null;
  restartTimer: NodeJS.Timeout | null;
  stopping: boolean;
  /** When it died lately (for the crash-loop rule). */
  deaths: number[];
  gaveUp: boolean;
  lastFailure: string | null;
}

export class QsdSupervisor {
  private readonly dir: string;
  private readonly journal: QsdJournal;
  private readonly log: XsLogger;
  private readonly binary: string;
  private readonly direct: boolean;
  private readonly startTimeoutMs: number;
  private readonly watched = new Map<string, Watched>();
  /** One operation at a time per id: ensure, stop and restart never interleave. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(opts: QsdSupervisorOptions) {
    this.dir = opts.dir;
    this.journal = opts.journal;
    this.log = opts.log;
    this.binary = opts.binary ?? DEFAULT_QSD_BINARY;
    this.direct = opts.direct ?? true;
    this.startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  }

  /** Whether this supervisor currently watches the daemon with that id. */
  has(id: string): boolean {
    return this.watched.has(id);
  }

  /** The record of a watched daemon (its pid changes when it is restarted). */
  record(id: string): QsdRecord | undefined {
    return this.watched.get(id)?.record;
  }

  /** Every daemon this supervisor watches, for display. */
  status(): QsdStatus[] {
    return [...this.watched.values()].map((w) => ({
      record: w.record,
      state: w.gaveUp ? 'gave-up' : w.child === null && w.poll === null ? 'restarting' : 'running',
      recentDeaths: w.deaths.length,
      lastFailure: w.lastFailure,
    }));
  }

  /** Adopts the recorded daemon if it is alive and ours, else starts one. */
  ensure(spec: QsdTarget, readOnly: boolean): Promise<QsdRecord> {
    const target = formatTarget(spec);
    const id = qsdId(target);
    return this.serial(id, async () => {
      this.assertOpen();
      const w = this.watched.get(id);
      if (w !== undefined && !w.gaveUp && w.record.readOnly === readOnly && this.alive(w.record)) return w.record;
      if (w !== undefined) await this.stopWatched(w);
      const recorded = (await this.journal.list()).find((r) => r.id === id);
      const running = recorded !== undefined && this.alive(recorded) ? recorded : await this.adoptUnrecorded(id, target);
      if (running !== null) {
        if (running.readOnly === readOnly) return this.watch(running, spec, null).record;
        this.log.info(`qsd ${id} (${target}) serves it ${running.readOnly ? 'read-only' : 'read-write'}: restarting it ${readOnly ? 'read-only' : 'read-write'}`);
        await this.terminate(running, null);
      }
      const { record, child } = await this.start(spec, readOnly);
      return this.watch(record, spec, child).record;
    });
  }

  /** Quits the daemon gracefully (QMP quit, then SIGTERM, then SIGKILL) and forgets it. */
  stop(id: string): Promise<void> {
    const w = this.watched.get(id);
    if (w !== undefined) w.stopping = true; // a death from now on is no crash
    return this.serial(id, async () => {
      const current = this.watched.get(id);
      if (current !== undefined) {
        await this.stopWatched(current);
      } else {
        const recorded = (await this.journal.list()).find((r) => r.id === id) ?? this.unrecorded(id, '');
        if (recorded !== null) await this.terminate(recorded, null);
      }
      await this.journal.stopped(id);
    });
  }

  /** At xenblkd's start: adopts every recorded daemon still alive, starts the dead ones again. */
  async adoptAll(): Promise<{ adopted: QsdRecord[]; restarted: QsdRecord[] }> {
    this.assertOpen();
    const adopted: QsdRecord[] = [];
    const restarted: QsdRecord[] = [];
    for (const r of await this.journal.list()) {
      const parsed = parseTarget(r.target);
      if (!parsed.ok || parsed.value.driver !== 'qsd' || qsdId(formatTarget(parsed.value)) !== r.id) {
        this.log.error(`qsd journal record ${r.id} names no qsd target (${parsed.ok ? r.target : parsed.message}): forgotten`);
        await this.journal.stopped(r.id);
        continue;
      }
      const spec = parsed.value;
      await this.serial(r.id, async () => {
        if (this.watched.has(r.id)) return;
        if (this.alive(r)) {
          this.watch(r, spec, null);
          adopted.push(r);
          this.log.info(`qsd ${r.id} (${r.target}) adopted, pid ${r.pid}`);
          return;
        }
        try {
          const { record, child } = await this.start(spec, r.readOnly);
          this.watch(record, spec, child);
          restarted.push(record);
          this.log.warn(`qsd ${r.id} (${r.target}) was not running (pid ${r.pid}): started again, pid ${record.pid}`);
        } catch (e) {
          // Its disk's requests fail through the NBD client; the record stays for the next try.
          this.log.error(`qsd ${r.id} (${r.target}) cannot be started again: ${(e as Error).message}`);
        }
      });
    }
    return { adopted, restarted };
  }

  /**
   * Stops the daemons no device wants (wanted: ids or canonical targets): the recorded ones and
   * any unrecorded one whose pid file is in the state folder. Returns their ids.
   */
  async reconcile(wanted: ReadonlySet<string>): Promise<string[]> {
    const wantedIds = new Set([...wanted].flatMap((w) => [w, qsdId(w)]));
    const recorded = await this.journal.list();
    const ids = new Set(recorded.map((r) => r.id));
    for (const name of listDir(this.dir)) {
      const m = /^(qsd-[0-9a-f]{16})\.pid$/.exec(name);
      if (m !== null) ids.add(m[1]!);
    }
    const stopped: string[] = [];
    for (const id of ids) {
      if (wantedIds.has(id)) continue;
      const r = recorded.find((x) => x.id === id);
      if (r === undefined && this.unrecorded(id, '') === null) continue; // a stale pid file
      this.log.info(`qsd ${id} (${r?.target ?? 'unrecorded'}) is wanted by no device: stopping it`);
      await this.stop(id);
      stopped.push(id);
    }
    return stopped;
  }

  /** Stops supervising (xenblkd shuts down); the daemons keep serving for the next xenblkd. */
  close(): void {
    this.closed = true;
    for (const w of this.watched.values()) this.unwatch(w);
    this.watched.clear();
  }

  // ---------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new StorageError('ESHUTDOWN', 'the qsd supervisor is closed');
  }

  private serial<T>(id: string, op: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(op);
    const tail = next.catch(() => undefined);
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return next;
  }

  /**
   * A daemon of ours that the journal does not know: xenblkd died between starting it and
   * recording it. Its pid file in the state folder names it.
   */
  private unrecorded(id: string, target: string): QsdRecord | null {
    const paths = qsdPaths(this.dir, id);
    const pid = readPid(paths.pidFile);
    if (pid === null || !isOurDaemon(pid, paths.socket, this.binary)) return null;
    return { id, target, readOnly: exportReadOnly(pid), socket: paths.socket, pid, startedAt: Date.now() };
  }

  private async adoptUnrecorded(id: string, target: string): Promise<QsdRecord | null> {
    const r = this.unrecorded(id, target);
    if (r === null) return null;
    await this.journal.started(r);
    this.log.warn(`qsd ${id} (${target}) was running unrecorded (xenblkd died while starting it): adopted, pid ${r.pid}`);
    return r;
  }

  private alive(r: QsdRecord): boolean {
    return isOurDaemon(r.pid, r.socket, this.binary);
  }

  private async start(spec: QsdTarget, readOnly: boolean): Promise<{ record: QsdRecord; child: ChildProcess }> {
    const target = formatTarget(spec);
    const id = qsdId(target);
    const paths = qsdPaths(this.dir, id);
    const tooLong = socketPathProblem(this.dir);
    if (tooLong !== null) throw new StorageError('ENAMETOOLONG', tooLong, target);
    try {
      fs.accessSync(this.binary, fs.constants.X_OK);
    } catch {
      throw new StorageError('ENOENT', `${this.binary} not found: apt-get install qemu-system-common qemu-block-extra`, target);
    }
    let image;
    try {
      image = probe(spec.path, this.direct);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new StorageError(code ?? 'EIO', openErrorMessage(spec.path, code, readOnly), target);
    }
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.rmSync(paths.pidFile, { force: true });
    const logFd = fs.openSync(paths.logFile, 'a');
    // The log keeps the daemon's words across restarts, within bounds.
    if (fs.fstatSync(logFd).size > MAX_LOG_BYTES) fs.ftruncateSync(logFd, 0);
    const logStart = fs.fstatSync(logFd).size;
    let child: ChildProcess;
    try {
      // Own session, no pipes to us: it outlives xenblkd and its process group.
      child = spawn(this.binary, qsdArgs(spec, id, paths, readOnly, image), {
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal !== null ? `killed by ${signal}` : `exit status ${code}`));
      child.once('error', (e) => resolve(e.message));
    });
    const ready = await this.waitReady(child, paths.pidFile, paths.socket, exited);
    if (ready !== true) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      const reason = reasonFromLog(readFrom(paths.logFile, logStart)) ?? ready;
      throw startError(target, reason);
    }
    const record: QsdRecord = { id, target, readOnly, socket: paths.socket, pid: child.pid!, startedAt: Date.now() };
    try {
      await this.journal.started(record);
    } catch (e) {
      // Not remembered: it would be a stray after a crash. Do not leave it running.
      child.kill('SIGKILL');
      await exited;
      throw new StorageError('EIO', `image ${target}: the qsd journal refused the record: ${(e as Error).message}`, target);
    }
    child.unref();
    return { record, child };
  }

  /** true once the pid file holds the child's pid (written after every option took effect). */
  private async waitReady(child: ChildProcess, pidFile: string, socket: string, exited: Promise<string>): Promise<true | string> {
    let exitReason: string | null = null;
    void exited.then((r) => (exitReason = r));
    const until = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (exitReason !== null) return `it exited at start (${exitReason})`;
      if (child.pid !== undefined && readPid(pidFile) === child.pid && fs.existsSync(socket)) return true;
      if (Date.now() >= until) return `it was not ready within ${this.startTimeoutMs} ms`;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private watch(record: QsdRecord, spec: QsdTarget, child: ChildProcess | null): Watched {
    const existing = this.watched.get(record.id);
    const w: Watched = existing ?? { record, spec, child: null, poll: null, restartTimer: null, stopping: false, deaths: [], gaveUp: false, lastFailure: null };
    w.record = record;
    w.child = child;
    w.gaveUp = false;
    this.watched.set(record.id, w);
    if (child !== null) {
      child.once('exit', (code, signal) => {
        if (w.child === child) this.died(w, signal !== null ? `killed by ${signal}` : `exit status ${code}`);
      });
    } else {
      w.poll = setInterval(() => {
        if (!this.alive(w.record)) this.died(w, 'gone');
      }, ADOPTED_POLL_MS);
      w.poll.unref();
    }
    return w;
  }

  private unwatch(w: Watched): void {
    if (w.poll !== null) clearInterval(w.poll);
    if (w.restartTimer !== null) clearTimeout(w.restartTimer);
    w.poll = null;
    w.restartTimer = null;
    w.child?.removeAllListeners('exit');
    w.child = null;
  }

  /** A daemon died while supervised: restart it with backoff, give up on a crash loop. */
  private died(w: Watched, how: string): void {
    this.unwatch(w);
    if (w.stopping || this.closed || this.watched.get(w.record.id) !== w) return;
    const now = Date.now();
    w.deaths = w.deaths.filter((t) => now - t < CRASH_LOOP_WINDOW_MS);
    w.deaths.push(now);
    w.lastFailure = how;
    const { id, target, pid } = w.record;
    if (w.deaths.length >= CRASH_LOOP_DEATHS) {
      w.gaveUp = true;
      this.log.error(`qsd ${id} (${target}) died ${w.deaths.length} times within ${CRASH_LOOP_WINDOW_MS / 1000} s (last: ${how}): not restarting it; its disk's requests fail`);
      return;
    }
    const delay = Math.min(FIRST_RESTART_DELAY_MS * 2 ** (w.deaths.length - 1), MAX_RESTART_DELAY_MS);
    this.log.warn(`qsd ${id} (${target}) pid ${pid} died (${how}): restarting it in ${delay} ms`);
    w.restartTimer = setTimeout(() => {
      w.restartTimer = null;
      void this.serial(id, async () => {
        if (w.stopping || this.closed || this.watched.get(id) !== w) return;
        try {
          const { record, child } = await this.start(w.spec, w.record.readOnly);
          if (w.stopping || this.closed) {
            await this.terminate(record, child);
            return;
          }
          this.watch(record, w.spec, child);
          this.log.info(`qsd ${id} (${target}) restarted, pid ${record.pid}`);
        } catch (e) {
          this.died(w, `restart failed: ${(e as Error).message}`);
        }
      });
    }, delay);
  }

  private async stopWatched(w: Watched): Promise<void> {
    w.stopping = true;
    const child = w.child;
    this.unwatch(w);
    this.watched.delete(w.record.id);
    await this.terminate(w.record, child);
  }

  /** Ends a daemon: QMP quit, then SIGTERM, then SIGKILL; signals only a process that is ours. */
  private async terminate(r: QsdRecord, child: ChildProcess | null): Promise<void> {
    const paths = qsdPaths(this.dir, r.id);
    const ours = () => this.alive(r);
    if (ours()) {
      const quit = await qmpQuit(paths.qmp, QMP_QUIT_MS);
      if (!quit || !(await waitUntilGone(ours, EXIT_WAIT_MS))) {
        this.log.warn(`qsd ${r.id} (${r.target}) did not quit over QMP: SIGTERM`);
        if (ours()) process.kill(r.pid, 'SIGTERM');
        if (!(await waitUntilGone(ours, EXIT_WAIT_MS))) {
          this.log.error(`qsd ${r.id} (${r.target}) ignored SIGTERM: SIGKILL`);
          if (ours()) process.kill(r.pid, 'SIGKILL');
          await waitUntilGone(ours, EXIT_WAIT_MS);
        }
      }
    }
    // A child of ours is reaped by node once it exits; wait for that, not just /proc.
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, EXIT_WAIT_MS);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    // QEMU leaves the NBD socket behind.
    fs.rmSync(paths.socket, { force: true });
  }
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function readPid(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The log text written since offset (this start's lines). */
function readFrom(file: string, offset: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const len = Math.max(0, Math.min(fs.fstatSync(fd).size - offset, 64 * 1024));
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, offset);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}
