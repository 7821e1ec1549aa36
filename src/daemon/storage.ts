// The daemon's storage: every target opened by the driver it names (src/io/storage), the
// qemu-storage-daemons serving image formats supervised, and which of them exist remembered in
// the event store (one stream per storage daemon), so that a restarted daemon adopts them and
// stops those no device wants any more.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageOpener } from '../effects/images';
import type { Logger } from '../log';
import { openTarget } from '../io/storage/open-target';
import { QsdSupervisor, type QsdJournal, type QsdRecord } from '../io/storage/qsd';
import { formatTarget, parseTarget } from '../io/storage/target';
import type { EventStore } from '../store/events';

export interface StorageSettings {
  /** How long lost storage may stall requests before they fail (ms; default 60 s). */
  readonly timeoutMs?: number;
  /** The qemu-storage-daemon program (default: found on PATH). */
  readonly qsdBinary?: string;
}

export interface DaemonStorage {
  readonly open: ImageOpener;
  /** After recovery: stops the storage daemons no device's target names. */
  reconcile(targets: readonly string[]): Promise<void>;
  /** Stops supervising; the storage daemons keep serving for the next start. */
  close(): void;
}

const QSD_STREAM = 'storage/qsd/';

/** The storage daemons as the event store remembers them: started, then stopped (or not). */
export function eventStoreQsdJournal(store: EventStore): QsdJournal {
  return {
    async started(record: QsdRecord) {
      await store.append(QSD_STREAM + record.id, [{ type: 'qsd.started', data: record }], 'any');
    },
    async stopped(id: string) {
      await store.append(QSD_STREAM + id, [{ type: 'qsd.stopped', data: { id } }], 'any');
    },
    async list() {
      const records: QsdRecord[] = [];
      for (const stream of await store.streams(QSD_STREAM)) {
        const events = await store.read(stream);
        const last = events[events.length - 1];
        if (last?.type === 'qsd.started') records.push(last.data as QsdRecord);
      }
      return records;
    },
  };
}

function ownerFileName(text: string): string {
  return `${crypto.createHash('sha256').update(text).digest('hex').slice(0, 16)}.owner`;
}

export async function startStorage(o: { store: EventStore; stateDir: string; logger: Logger; settings?: StorageSettings }): Promise<DaemonStorage> {
  const log = o.logger.child({ part: 'storage' });
  fs.mkdirSync(path.join(o.stateDir, 'rbd'), { recursive: true });
  const qsd = new QsdSupervisor({
    dir: path.join(o.stateDir, 'qsd'),
    journal: eventStoreQsdJournal(o.store),
    log,
    binary: o.settings?.qsdBinary,
  });
  const { adopted, restarted } = await qsd.adoptAll();
  if (adopted.length + restarted.length > 0) {
    log.info({ adopted: adopted.map((r) => r.target), restarted: restarted.map((r) => r.target) }, 'storage daemons from the previous run taken over');
  }
  const deps = {
    log,
    qsd,
    timeoutMs: o.settings?.timeoutMs,
    rbdOwnerFile: (spec: Parameters<typeof formatTarget>[0]) => path.join(o.stateDir, 'rbd', ownerFileName(formatTarget(spec))),
  };
  return {
    open: (target, opts) => openTarget(target, opts, deps),
    async reconcile(targets) {
      const wanted = new Set<string>();
      for (const t of targets) {
        const parsed = parseTarget(t);
        if (parsed.ok && parsed.value.driver === 'qsd') wanted.add(formatTarget(parsed.value));
      }
      // The supervisor takes canonical targets (their ids follow from them).
      const stopped = await qsd.reconcile(wanted);
      if (stopped.length > 0) log.info({ stopped }, 'storage daemons no device uses any more stopped');
    },
    close() {
      qsd.close();
    },
  };
}
