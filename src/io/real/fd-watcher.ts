// Waits for a file descriptor (/dev/xen/evtchn) to become readable without blocking the event
// loop: poll(2) runs on a worker thread through koffi's async calls, together with a pipe that
// stop() writes to, so a waiting poll can always be woken (a blocked read could not).
import koffi = require('koffi');
import * as fs from 'node:fs';

const POLLIN = 0x001;
const POLLERR = 0x008;
const POLLHUP = 0x010;
const POLLNVAL = 0x020;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;

type Fn = ReturnType<koffi.LibraryHandle['func']>;
let libc: { poll: Fn; pipe2: Fn; fcntl: Fn } | undefined;

function lib() {
  if (!libc) {
    const l = koffi.load('libc.so.6');
    libc = {
      poll: l.func('int poll(void *fds, unsigned long nfds, int timeout)'),
      pipe2: l.func('int pipe2(_Out_ int *fds, int flags)'),
      fcntl: l.func('int fcntl(int fd, int cmd, ...)'),
    };
  }
  return libc;
}

/** Sets O_NONBLOCK so that reads past the last pending port fail with EAGAIN instead of waiting. */
export function setNonBlocking(fd: number): void {
  const { fcntl } = lib();
  const flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, 'int', flags | O_NONBLOCK) < 0) throw new Error(`fcntl O_NONBLOCK: errno ${koffi.errno()}`);
}

export class FdWatcher {
  private readonly wake: number[];
  /** struct pollfd[2]: { int fd; short events; short revents } x 2. */
  private readonly pfd = new Int16Array(8);
  private polling = false;
  private wanted = false;
  private closed = false;
  private readonly drain = Buffer.alloc(64);

  /** onReadable runs on the main thread each time fd is readable; onError if fd is broken. */
  constructor(
    private readonly fd: number,
    private readonly onReadable: () => void,
    private readonly onError: (why: string) => void,
  ) {
    const fds = new Int32Array(2);
    if (lib().pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) throw new Error(`pipe2: errno ${koffi.errno()}`);
    this.wake = [fds[0], fds[1]];
    const i32 = new Int32Array(this.pfd.buffer);
    i32[0] = fd;
    this.pfd[2] = POLLIN;
    i32[2] = this.wake[0];
    this.pfd[6] = POLLIN;
  }

  /** Keeps a poll armed until stop(). While armed, the event loop stays alive. */
  start(): void {
    if (this.closed) return;
    this.wanted = true;
    if (!this.polling) this.arm();
  }

  /** Wakes the waiting poll and does not re-arm it. */
  stop(): void {
    this.wanted = false;
    if (this.polling) {
      try {
        fs.writeSync(this.wake[1], Buffer.from([1]));
      } catch {
        // Pipe full: a wake-up is already pending.
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.stop();
    this.closed = true;
    if (!this.polling) this.closePipe();
  }

  private arm(): void {
    this.polling = true;
    this.pfd[3] = 0;
    this.pfd[7] = 0;
    lib().poll.async(this.pfd, 2, -1, (err: unknown, rc: number) => {
      this.polling = false;
      if (this.closed) return this.closePipe();
      if (err) return this.onError(`poll: ${String(err)}`);
      if (rc > 0) {
        if (this.pfd[7] !== 0) this.drainWake();
        const re = this.pfd[3];
        if (re & POLLNVAL) return this.onError('poll: event channel fd is not open');
        if (re & (POLLERR | POLLHUP)) return this.onError('poll: event channel fd reported an error');
        if (re & POLLIN) this.onReadable();
      }
      // rc < 0 is EINTR at worst: poll again.
      if (this.wanted && !this.closed) this.arm();
      else if (this.closed) this.closePipe();
    });
  }

  private drainWake(): void {
    try {
      while (fs.readSync(this.wake[0], this.drain) > 0);
    } catch {
      // EAGAIN: drained.
    }
  }

  private closePipe(): void {
    if (this.wake[0] < 0) return;
    fs.closeSync(this.wake[0]);
    fs.closeSync(this.wake[1]);
    this.wake[0] = this.wake[1] = -1;
  }
}
