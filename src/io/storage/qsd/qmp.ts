// A graceful quit over the daemon's QMP monitor: the daemon flushes and closes its images.
import * as net from 'node:net';

/** Sends quit; resolves true once QMP answered it (the process exits right after). */
export function qmpQuit(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(socketPath);
    let buffered = '';
    let sentQuit = false;
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(sentQuit));
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('QMP' in msg) sock.write('{"execute":"qmp_capabilities"}\n');
        else if ('return' in msg && !sentQuit) {
          sentQuit = true;
          sock.write('{"execute":"quit"}\n');
        } else if ('return' in msg && sentQuit) finish(true);
        else if ('error' in msg) finish(false);
      }
    });
  });
}
