// Prometheus metrics (/metrics): per-device counters read from the dataplanes at scrape time,
// device state gauges, transitions, recoveries and the event store's size.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DataplaneStats } from '../effects/dataplane-port';
import type { EngineTransition } from './engine';

export interface MetricsSource {
  devices(): { key: string; backendState: number; frontendState: number | null; connected: boolean; stats?: DataplaneStats; storageStalledSeconds?: number }[];
  storeBytes(): Promise<number>;
  /** Whether the event store takes writes, its failed writes, and the devices waiting for it. */
  store?(): { writable: boolean; failedWrites: number; waitingDevices: number };
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly transitions: Counter<'machine' | 'event'>;
  private readonly recoveries: Counter<'device'>;

  constructor(source: MetricsSource) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'xenblkd_process_' });
    this.transitions = new Counter({ name: 'xenblkd_transitions_total', help: 'Events processed by the statecharts', labelNames: ['machine', 'event'], registers: [r] });
    this.recoveries = new Counter({ name: 'xenblkd_recoveries_total', help: 'Devices recovered from the event store at start', labelNames: ['device'], registers: [r] });
    const perDevice = (name: string, help: string, pick: (s: DataplaneStats) => number, type: 'counter' | 'gauge') => {
      const Metric = type === 'counter' ? Counter : Gauge;
      new Metric({
        name,
        help,
        labelNames: ['device'],
        registers: [r],
        collect(this: Gauge<'device'> | Counter<'device'>) {
          this.reset();
          for (const d of source.devices()) {
            if (!d.stats) continue;
            // Counters are read from the dataplane as they are (they restart at 0 with the process).
            if (type === 'counter') (this as Counter<'device'>).inc({ device: d.key }, pick(d.stats));
            else (this as Gauge<'device'>).set({ device: d.key }, pick(d.stats));
          }
        },
      });
    };
    perDevice('xenblkd_device_read_requests_total', 'rd_req: read requests answered', (s) => s.rdReq, 'counter');
    perDevice('xenblkd_device_write_requests_total', 'wr_req: write requests answered', (s) => s.wrReq, 'counter');
    perDevice('xenblkd_device_flush_requests_total', 'f_req: flush and barrier requests answered', (s) => s.fReq, 'counter');
    perDevice('xenblkd_device_discard_requests_total', 'ds_req: discard requests answered', (s) => s.dsReq, 'counter');
    perDevice('xenblkd_device_waited_requests_total', 'oo_req: requests that waited for a buffer', (s) => s.ooReq, 'counter');
    perDevice('xenblkd_device_read_sectors_total', 'rd_sect: 512-byte sectors read', (s) => s.rdSect, 'counter');
    perDevice('xenblkd_device_written_sectors_total', 'wr_sect: 512-byte sectors written', (s) => s.wrSect, 'counter');
    perDevice('xenblkd_device_errors_total', 'requests answered with an error', (s) => s.errors, 'counter');
    perDevice('xenblkd_device_journal_failures_total', 'publication journal faults: batches published without their record, repairs of the file', (s) => s.journalFailures, 'counter');
    perDevice('xenblkd_device_in_flight', 'requests consumed and not yet answered', (s) => s.inFlight, 'gauge');
    new Gauge({
      name: 'xenblkd_device_request_latency_seconds',
      help: 'Time from taking a request off the ring to publishing its response, by quantile since the daemon started (upper bound of a power-of-two bucket)',
      labelNames: ['device', 'quantile'],
      registers: [r],
      collect(this: Gauge<'device' | 'quantile'>) {
        this.reset();
        for (const d of source.devices()) {
          if (!d.stats) continue;
          for (const q of [0.5, 0.9, 0.99]) {
            const us = latencyQuantileUs(d.stats.latency, q);
            if (us !== undefined) this.set({ device: d.key, quantile: String(q) }, us / 1e6);
          }
        }
      },
    });
    new Gauge({
      name: 'xenblkd_device_backend_state',
      help: 'The xenbus state of the backend (1..6)',
      labelNames: ['device'],
      registers: [r],
      collect(this: Gauge<'device'>) {
        this.reset();
        for (const d of source.devices()) this.set({ device: d.key }, d.backendState);
      },
    });
    new Gauge({
      name: 'xenblkd_device_connected',
      help: '1 while the dataplane serves the device',
      labelNames: ['device'],
      registers: [r],
      collect(this: Gauge<'device'>) {
        this.reset();
        for (const d of source.devices()) this.set({ device: d.key }, d.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'xenblkd_device_storage_stalled_seconds',
      help: 'How long the device\'s storage has not answered (a lost NBD server being reconnected); 0 while it answers',
      labelNames: ['device'],
      registers: [r],
      collect(this: Gauge<'device'>) {
        this.reset();
        for (const d of source.devices()) this.set({ device: d.key }, d.storageStalledSeconds ?? 0);
      },
    });
    new Gauge({ name: 'xenblkd_devices', help: 'Devices this daemon manages', registers: [r], collect(this: Gauge) { this.set(source.devices().length); } });
    new Gauge({
      name: 'xenblkd_event_store_bytes',
      help: 'Size of the LevelDB event store on disk',
      registers: [r],
      async collect(this: Gauge) {
        this.set(await source.storeBytes());
      },
    });
    new Gauge({
      name: 'xenblkd_event_store_writable',
      help: '1 while the event store takes writes; 0 while the state folder refuses them (full, read-only, corrupt): state changes and new devices wait',
      registers: [r],
      collect(this: Gauge) {
        this.set(source.store?.().writable === false ? 0 : 1);
      },
    });
    new Counter({
      name: 'xenblkd_event_store_write_failures_total',
      help: 'Writes (and reopen attempts) of the event store that the state folder refused; each is retried',
      registers: [r],
      collect(this: Counter) {
        this.reset();
        this.inc(source.store?.().failedWrites ?? 0);
      },
    });
    new Gauge({
      name: 'xenblkd_devices_waiting_for_store',
      help: 'New devices whose first event waits for the event store to take writes',
      registers: [r],
      collect(this: Gauge) {
        this.set(source.store?.().waitingDevices ?? 0);
      },
    });
  }

  onTransition(t: EngineTransition): void {
    this.transitions.inc({ machine: t.machine, event: t.event.type });
  }

  onRecovered(device: string): void {
    this.recoveries.inc({ device });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** The upper bound of the bucket holding the q-quantile; undefined before any request. */
export function latencyQuantileUs(h: { boundsUs: readonly (number | null)[]; counts: readonly number[] }, q: number): number | undefined {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const want = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i];
    // The last bucket is unbounded (Infinity, null once through JSON): report its lower bound.
    if (seen >= want) return Number.isFinite(h.boundsUs[i]) ? (h.boundsUs[i] as number) : ((h.boundsUs[i - 1] as number) ?? 0);
  }
  return undefined;
}
