// The daemon's control socket (<state-dir>/control.sock): one JSON request per line, one JSON
// reply per line. `xenblkd ls` and `xenblkd record` talk to it.
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Logger } from '../log';

export type ControlHandler = (request: { op: string } & Record<string, unknown>) => Promise<unknown>;

export class ControlServer {
  private readonly server: net.Server;

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async listen(socketPath: string, handler: ControlHandler, logger: Logger): Promise<ControlServer> {
    // A socket file left by a killed daemon: the state folder's lock already proved we are alone.
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer((conn) => {
      let buffered = '';
      conn.setEncoding('utf8');
      conn.on('data', (chunk: string) => {
        buffered += chunk;
        if (buffered.length > 1 << 20) {
          conn.destroy();
          return;
        }
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          let request: { op: string } & Record<string, unknown>;
          try {
            request = JSON.parse(line) as typeof request;
            if (typeof request?.op !== 'string') throw new Error('no op');
          } catch {
            conn.write(JSON.stringify({ ok: false, error: 'a request is one JSON object with an op' }) + '\n');
            continue;
          }
          handler(request).then(
            (result) => conn.write(JSON.stringify({ ok: true, result }) + '\n'),
            (err: Error) => conn.write(JSON.stringify({ ok: false, error: err.message }) + '\n'),
          );
        }
      });
      conn.on('error', (err) => logger.debug({ err }, 'control connection error'));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    fs.chmodSync(socketPath, 0o600);
    return new ControlServer(server);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Sends one request to a daemon's control socket and returns its result. */
export function controlRequest(socketPath: string, request: { op: string } & Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath);
    let buffered = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify(request) + '\n'));
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      let reply: { ok: boolean; result?: unknown; error?: string };
      try {
        reply = JSON.parse(buffered.slice(0, nl)) as typeof reply;
      } catch {
        reject(new Error(`${socketPath} answered something other than JSON (not a xenblkd control socket?)`));
        return;
      }
      if (reply?.ok) resolve(reply.result);
      else reject(new Error(reply?.error ?? 'malformed reply'));
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
