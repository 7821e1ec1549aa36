// Who holds an image's exclusive lock on this daemon's behalf. One daemon per state folder: the
// client address recorded here by the previous incarnation, if it still holds the lock, belongs
// to a process that is dead (SIGKILL, power loss), so its lock can be broken at once instead of
// waiting out its watch (osd_client_watch_timeout, 30 s). The address is what librbd reports as
// the lock owner (rbd_lock_get_owners; rados_getaddrs gives the same "IP:PORT/NONCE" text) and
// its nonce is new for every client instance, so a live client elsewhere never matches.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface OwnerRecord {
  /** librados client address as lock owners are listed: "127.0.0.1:0/1591123586". */
  readonly address: string;
  /** "client.4119": for humans and logs. */
  readonly client: string;
  /** pool[/namespace]/image the record is about. */
  readonly image: string;
  readonly pid: number;
  readonly at: string;
}

/** The record, or null when there is none or it is unreadable (then nothing is broken). */
export async function readOwner(file: string): Promise<OwnerRecord | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const rec = JSON.parse(text) as Partial<OwnerRecord>;
    if (typeof rec.address !== 'string' || typeof rec.image !== 'string') return null;
    return rec as OwnerRecord;
  } catch {
    return null;
  }
}

/** Writes the record atomically (temp file, fsync, rename, fsync of the folder). */
export async function writeOwner(file: string, rec: OwnerRecord): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(rec)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
  const dir = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Removes the record after a clean close (the lock was released with it). */
export async function removeOwner(file: string, address: string): Promise<void> {
  const rec = await readOwner(file).catch(() => null);
  if (rec?.address === address) await fs.promises.rm(file, { force: true });
}
