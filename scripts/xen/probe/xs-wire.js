'use strict';
// A few lines of xenstore wire framing for the dom0 probes (the project's own client will
// replace this): header = type, req_id, tx_id, len as little-endian u32, then the payload.
const net = require('node:net');

const XS = { DIRECTORY: 1, READ: 2, WATCH: 4, WRITE: 11, RM: 13, WATCH_EVENT: 15, ERROR: 16 };

class XsConnection {
  constructor(socketPath) {
    this.sock = net.createConnection(socketPath);
    this.buf = Buffer.alloc(0);
    this.nextId = 1;
    this.pending = new Map();
    this.onWatch = () => {};
    this.sock.on('data', (d) => this.receive(d));
    this.closed = new Promise((resolve) => this.sock.on('close', resolve));
    this.sock.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  ready() {
    return new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
  }

  receive(data) {
    this.buf = Buffer.concat([this.buf, data]);
    while (this.buf.length >= 16) {
      const type = this.buf.readUInt32LE(0);
      const reqId = this.buf.readUInt32LE(4);
      const len = this.buf.readUInt32LE(12);
      if (this.buf.length < 16 + len) return;
      const payload = this.buf.subarray(16, 16 + len);
      this.buf = this.buf.subarray(16 + len);
      if (type === XS.WATCH_EVENT) {
        const [path, token] = payload.toString('utf8').split('\0');
        this.onWatch(path, token);
        continue;
      }
      const p = this.pending.get(reqId);
      if (!p) continue;
      this.pending.delete(reqId);
      if (type === XS.ERROR) p.reject(new XsError(payload.toString('utf8').replace(/\0$/, ''), p.what));
      else p.resolve(payload);
    }
  }

  request(type, text, what) {
    const reqId = this.nextId++;
    const payload = Buffer.from(text, 'utf8');
    const header = Buffer.alloc(16);
    header.writeUInt32LE(type, 0);
    header.writeUInt32LE(reqId, 4);
    header.writeUInt32LE(0, 8);
    header.writeUInt32LE(payload.length, 12);
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, { resolve, reject, what });
      this.sock.write(Buffer.concat([header, payload]));
    });
  }

  async read(path) {
    return (await this.request(XS.READ, `${path}\0`, `read ${path}`)).toString('utf8');
  }

  async tryRead(path) {
    try {
      return await this.read(path);
    } catch (err) {
      if (err instanceof XsError && err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async directory(path) {
    const raw = (await this.request(XS.DIRECTORY, `${path}\0`, `directory ${path}`)).toString('utf8');
    return raw.split('\0').filter((s) => s.length > 0);
  }

  async tryDirectory(path) {
    try {
      return await this.directory(path);
    } catch (err) {
      if (err instanceof XsError && err.code === 'ENOENT') return [];
      throw err;
    }
  }

  // WRITE takes `path\0value` with no NUL after the value
  async write(path, value) {
    await this.request(XS.WRITE, `${path}\0${value}`, `write ${path}`);
  }

  async watch(path, token) {
    await this.request(XS.WATCH, `${path}\0${token}\0`, `watch ${path}`);
  }

  close() {
    this.sock.end();
  }
}

class XsError extends Error {
  constructor(code, what) {
    super(`${what}: ${code}`);
    this.code = code;
  }
}

async function connect(socketPath) {
  const c = new XsConnection(socketPath);
  await c.ready();
  return c;
}

module.exports = { connect, XsError, XS };
