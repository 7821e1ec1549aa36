// The dashboard's HTTP server: the page, its JSON state, a server-sent-event stream, /metrics.
import * as http from 'node:http';
import type { Subscription } from 'rxjs';
import type { Logger } from '../log';
import type { DashboardModel } from './model';
import { DASHBOARD_HTML } from './page';

export interface DashboardServerOptions {
  readonly model: DashboardModel;
  readonly logger: Logger;
  /** Prometheus text exposition, for GET /metrics. */
  readonly metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Interval of the rate samples, ms (default 1000). */
  readonly sampleMs?: number;
}

export class DashboardServer {
  private readonly server: http.Server;
  private readonly clients = new Set<http.ServerResponse>();
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: DashboardServerOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.sub = opts.model.events$.subscribe((e) => this.broadcast(e.kind, e.data));
    let ticks = 0;
    this.timer = setInterval(() => {
      opts.model.sample();
      // A comment now and then keeps idle proxies from closing the event stream.
      if (++ticks % 15 === 0) for (const c of this.clients) c.write(': keep-alive\n\n');
    }, opts.sampleMs ?? 1000);
    this.timer.unref();
  }

  /** Listens on host:port (port 0: any); returns the URL. */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address() as { port: number };
        resolve(`http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/`);
      });
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    switch (url) {
      case '/':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(DASHBOARD_HTML);
        return;
      case '/api/state':
        this.json(res, { ...this.opts.model.state(), daemon: { pid: process.pid, startedAt: this.startedAt } });
        return;
      case '/api/devices':
        this.json(res, this.opts.model.devices());
        return;
      case '/api/events':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write('retry: 1000\n\n');
        this.clients.add(res);
        req.on('close', () => this.clients.delete(res));
        return;
      case '/metrics':
        if (!this.opts.metrics) break;
        this.opts.metrics().then(
          (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
          (err) => {
            this.opts.logger.warn({ err }, 'metrics failed');
            res.writeHead(500).end();
          },
        );
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  private json(res: http.ServerResponse, value: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(value));
  }

  private broadcast(kind: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const frame = `event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) c.write(frame);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.sub.unsubscribe();
    for (const c of this.clients) c.end();
    this.clients.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // A connection still busy (a slow scrape, a page loading) would hold close() up.
    this.server.closeAllConnections();
    await closed;
  }
}
