// What xenblkd remembers about the storage daemons it started, so a restarted xenblkd adopts
// them instead of starting a second one. The daemon keeps it in its event store; FileQsdJournal
// is the small stand-alone version for tests and tools.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface QsdRecord {
  /** Derived from the canonical target: the same image always has the same id. */
  readonly id: string;
  /** Canonical target text (formatTarget). */
  readonly target: string;
  readonly readOnly: boolean;
  /** The NBD export's unix socket. */
  readonly socket: string;
  readonly pid: number;
  /** ms since the epoch. */
  readonly startedAt: number;
}

export interface QsdJournal {
  started(r: QsdRecord): Promise<void>;
  stopped(id: string): Promise<void>;
  list(): Promise<readonly QsdRecord[]>;
}

function isRecord(v: unknown): v is QsdRecord {
  const r = v as Partial<QsdRecord> | null;
  return (
    typeof r === 'object' && r !== null &&
    typeof r.id === 'string' && typeof r.target === 'string' && typeof r.readOnly === 'boolean' &&
    typeof r.socket === 'string' && Number.isInteger(r.pid) && (r.pid as number) > 0 && typeof r.startedAt === 'number'
  );
}

/** One JSON file, replaced atomically (write to a temporary file, fsync, rename). */
export class FileQsdJournal implements QsdJournal {
  // Writes are chained: two concurrent updates must not lose one another.
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly file: string) {}

  started(r: QsdRecord): Promise<void> {
    return this.update((all) => [...all.filter((x) => x.id !== r.id), r]);
  }

  stopped(id: string): Promise<void> {
    return this.update((all) => all.filter((x) => x.id !== id));
  }

  async list(): Promise<readonly QsdRecord[]> {
    await this.tail.catch(() => undefined);
    return this.read();
  }

  private update(change: (all: readonly QsdRecord[]) => QsdRecord[]): Promise<void> {
    const next = this.tail.catch(() => undefined).then(async () => {
      const records = change(await this.read());
      const tmp = `${this.file}.tmp`;
      const fh = await fs.promises.open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify(records));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, this.file);
    });
    this.tail = next;
    return next;
  }

  private async read(): Promise<QsdRecord[]> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed) || !parsed.every(isRecord)) {
      throw new Error(`qsd journal ${path.basename(this.file)} is not a list of records`);
    }
    return parsed;
  }
}
