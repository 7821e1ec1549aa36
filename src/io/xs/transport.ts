// Where and how a client reaches xenstored, following libxenstore: $XENSTORED_PATH, else
// $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket; if no socket answers, the
// /dev/xen/xenbus device (same framing). A path that is not a socket is opened as a device.
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { DeviceStream } from './device-stream';
import { XsError } from './errors';

export type XsTransportKind = 'auto' | 'socket' | 'xenbus';

export const XENBUS_DEVICE = '/dev/xen/xenbus';

export interface XsTransportOptions {
  /** Socket or device path; default from the environment as libxenstore does. */
  path?: string;
  transport?: XsTransportKind;
  /** Opens an in-process connection instead (the simulated host's guests). */
  duplex?: () => Duplex | Promise<Duplex>;
}

export interface OpenedTransport {
  stream: Duplex;
  /** e.g. `socket /run/xenstored/socket` (for logs). */
  description: string;
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENSTORED_PATH) return env.XENSTORED_PATH;
  return `${env.XENSTORED_RUNDIR ?? '/var/run/xenstored'}/socket`;
}

function connectSocket(path: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    const onError = (err: Error) => reject(err);
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      s.setNoDelay?.(true);
      resolve(s);
    });
  });
}

function isSocket(path: string): boolean {
  try {
    return fs.statSync(path).isSocket();
  } catch {
    return false;
  }
}

function fail(what: string, err: unknown): XsError {
  return new XsError('ENOTCONN', `cannot connect to xenstored (${what}): ${(err as Error).message}`);
}

export async function openTransport(opts: XsTransportOptions): Promise<OpenedTransport> {
  if (opts.duplex) {
    try {
      return { stream: await opts.duplex(), description: 'in-process' };
    } catch (e) {
      throw fail('in-process', e);
    }
  }
  const kind = opts.transport ?? 'auto';
  if (kind === 'xenbus' || (kind === 'auto' && opts.path && fs.existsSync(opts.path) && !isSocket(opts.path))) {
    const path = opts.path ?? XENBUS_DEVICE;
    try {
      return { stream: await DeviceStream.open(path), description: `device ${path}` };
    } catch (e) {
      throw fail(`device ${path}`, e);
    }
  }
  const path = opts.path ?? defaultSocketPath();
  try {
    return { stream: await connectSocket(path), description: `socket ${path}` };
  } catch (e) {
    if (kind === 'socket' || opts.path) throw fail(`socket ${path}`, e);
    try {
      return { stream: await DeviceStream.open(XENBUS_DEVICE), description: `device ${XENBUS_DEVICE}` };
    } catch (e2) {
      throw fail(`socket ${path}: ${(e as Error).message}; device ${XENBUS_DEVICE}`, e2);
    }
  }
}
