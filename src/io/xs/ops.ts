// The node operations shared by the client and its transaction handles: each turns into one
// request (DIRECTORY may fall back to several DIRECTORY_PARTs) through `call`.
import { rawPayload, type Decode } from './connection';
import { XsError, isXsError } from './errors';
import { decodeNames } from './payload';
import { formatPerm, parsePerm, validatePerms, type XsPerm } from './perms';
import { XsType } from './wire';

export interface XsOps {
  /** The value as UTF-8 text; ENOENT (as XsError) when the node does not exist. */
  read(path: string): Promise<string>;
  /** The value as bytes. */
  readBytes(path: string): Promise<Buffer>;
  /** The value, or undefined when the node does not exist. */
  tryRead(path: string): Promise<string | undefined>;
  /** Writes a value, creating missing parents (with empty values). */
  write(path: string, value: string | Uint8Array): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Removes the node and everything below; a missing node is fine if its parent exists. */
  rm(path: string): Promise<void>;
  /** Child names; uses DIRECTORY_PART when the list exceeds one reply. */
  directory(path: string): Promise<string[]>;
  getPerms(path: string): Promise<XsPerm[]>;
  setPerms(path: string, perms: XsPerm[]): Promise<void>;
}

/** How many times a DIRECTORY_PART listing restarts when the directory keeps changing. */
const DIRECTORY_PART_ATTEMPTS = 8;

const utf8: Decode<string> = (p) => p.toString('utf8');
const ignore: Decode<void> = () => undefined;

function decodePerms(payload: Buffer): XsPerm[] {
  const perms: XsPerm[] = [];
  for (const s of decodeNames(payload)) {
    const p = parsePerm(s);
    if (!p) throw new XsError('EPROTO', `bad permission '${s.slice(0, 32)}' from xenstored`);
    perms.push(p);
  }
  return perms;
}

export abstract class XsOpsBase implements XsOps {
  /** Sends one request in this handle's context (transaction or not); resolves with decode(reply). */
  protected abstract call<T>(type: number, parts: readonly (string | Uint8Array)[], lastRaw: boolean, decode: Decode<T>): Promise<T>;

  read(path: string): Promise<string> {
    return this.call(XsType.READ, [path], false, utf8);
  }

  readBytes(path: string): Promise<Buffer> {
    return this.call(XsType.READ, [path], false, rawPayload);
  }

  async tryRead(path: string): Promise<string | undefined> {
    try {
      return await this.read(path);
    } catch (e) {
      if (isXsError(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  write(path: string, value: string | Uint8Array): Promise<void> {
    return this.call(XsType.WRITE, [path, value], true, ignore);
  }

  mkdir(path: string): Promise<void> {
    return this.call(XsType.MKDIR, [path], false, ignore);
  }

  rm(path: string): Promise<void> {
    return this.call(XsType.RM, [path], false, ignore);
  }

  async directory(path: string): Promise<string[]> {
    try {
      return await this.call(XsType.DIRECTORY, [path], false, decodeNames);
    } catch (e) {
      if (!isXsError(e, 'E2BIG')) throw e;
      return this.directoryInParts(path);
    }
  }

  getPerms(path: string): Promise<XsPerm[]> {
    return this.call(XsType.GET_PERMS, [path], false, decodePerms);
  }

  setPerms(path: string, perms: XsPerm[]): Promise<void> {
    const bad = validatePerms(perms);
    if (bad) return Promise.reject(new XsError('EINVAL', bad));
    return this.call(XsType.SET_PERMS, [path, ...perms.map(formatPerm)], false, ignore);
  }

  /** DIRECTORY_PART replies: `<generation>\0` + names; the last one ends with an extra NUL. */
  private async directoryInParts(path: string): Promise<string[]> {
    for (let attempt = 0; attempt < DIRECTORY_PART_ATTEMPTS; attempt++) {
      const chunks: Buffer[] = [];
      let generation: string | undefined;
      let offset = 0;
      let restart = false;
      for (;;) {
        const reply = await this.call(XsType.DIRECTORY_PART, [path, String(offset)], false, rawPayload);
        const nul = reply.indexOf(0);
        if (nul < 0) throw new XsError('EPROTO', 'DIRECTORY_PART reply without generation');
        const gen = reply.toString('latin1', 0, nul);
        if (generation === undefined) generation = gen;
        else if (gen !== generation) {
          restart = true;
          break;
        }
        const body = reply.subarray(nul + 1);
        const last = body.length === 0 || (body[body.length - 1] === 0 && (body.length === 1 || body[body.length - 2] === 0));
        if (last) {
          if (body.length > 1) chunks.push(body.subarray(0, body.length - 1));
          break;
        }
        chunks.push(body);
        offset += body.length;
      }
      if (!restart) return decodeNames(Buffer.concat(chunks));
    }
    throw new XsError('EAGAIN', `${path} kept changing while being listed`);
  }
}
