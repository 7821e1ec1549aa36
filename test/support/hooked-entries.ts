// Where the build puts the test entries (scripts/bundle.js): the daemon CLI and the standalone
// dataplane with the test hooks read from the environment.
import * as fs from 'node:fs';
import * as path from 'node:path';

const DIR = path.resolve(__dirname, '../../dist/test');
export const HOOKED_CLI = path.join(DIR, 'xenblkd-hooked.js');
export const HOOKED_DATAPLANE = path.join(DIR, 'xenblkd-dataplane-hooked.js');

/** The file, or a one-line error saying how to make it. */
export function hookedEntry(file: string): string {
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run npm run build`);
  return file;
}
