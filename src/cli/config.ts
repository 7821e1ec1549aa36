// The daemon's config file (packaging/xenblkd.conf): "key = value" lines, '#' comments. Keys are
// the long options of `xenblkd run`; an option given on the command line wins.
import * as fs from 'node:fs';
import { UserError } from './command';

export const CONFIG_KEYS = [
  'xenstore',
  'state-dir',
  'backend-type',
  'backend-domid',
  'http',
  'log-format',
  'log-level',
  'max-ring-page-order',
  'max-indirect-segments',
  'feature-persistent',
  'feature-barrier',
  'data-path',
  'storage-timeout',
  'sim',
  'record',
] as const;

export type ConfigKey = (typeof CONFIG_KEYS)[number];

export function parseConfig(text: string, file: string): Partial<Record<ConfigKey, string>> {
  const out: Partial<Record<ConfigKey, string>> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const m = /^([a-z][a-z-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new UserError(`${file}:${i + 1}: expected 'key = value', got '${line.slice(0, 60)}'`);
    const key = m[1] as ConfigKey;
    if (!CONFIG_KEYS.includes(key)) throw new UserError(`${file}:${i + 1}: unknown key '${m[1]}' (known: ${CONFIG_KEYS.join(', ')})`);
    out[key] = m[2].trim();
  });
  return out;
}

export function readConfig(file: string): Partial<Record<ConfigKey, string>> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, file);
}

export function parseBool(text: string, key: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new UserError(`${key} takes true or false, got '${text}'`);
}

export function parseIntIn(text: string, key: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UserError(`${key} takes an integer in ${min}..${max}, got '${text}'`);
  return Number(text);
}

/** "HOST:PORT" or ":PORT" or "PORT"; HOST defaults to loopback. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):)?(\d{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new UserError(`--http takes HOST:PORT, got '${text}'`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}
