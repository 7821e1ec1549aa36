import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSession, type ParsedSession } from '../../../src/replay';

export const FIXTURES = path.resolve(__dirname, '../../fixtures/sessions');

export function fixtureNames(): string[] {
  return fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.jsonl')).map((f) => f.replace(/\.jsonl$/, '')).sort();
}

export function loadFixture(name: string): ParsedSession {
  return parseSession(fs.readFileSync(path.join(FIXTURES, `${name}.jsonl`), 'utf8'));
}
