// Records every scenario into test/fixtures/sessions/<name>.jsonl and checks that each replays
// identically before keeping it. Run through scripts/record-fixtures.sh.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSession, replaySession, summaryLine, divergenceLines } from '../../../src/replay';
import { SCENARIOS } from './scenarios';

export const FIXTURES_DIR = path.resolve(__dirname, '../../fixtures/sessions');

export async function recordFixtures(names: readonly string[], out: (line: string) => void): Promise<boolean> {
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  let ok = true;
  for (const scenario of SCENARIOS) {
    if (names.length > 0 && !names.includes(scenario.name)) continue;
    const file = path.join(FIXTURES_DIR, `${scenario.name}.jsonl`);
    const tmp = `${file}.recording`;
    fs.rmSync(tmp, { force: true });
    await scenario.record(tmp);
    const result = await replaySession(parseSession(fs.readFileSync(tmp, 'utf8')));
    out(summaryLine(file, result));
    if (result.first) {
      for (const l of divergenceLines(result.first)) out(l);
      out(`kept the failed recording in ${tmp}`);
      ok = false;
      continue;
    }
    fs.renameSync(tmp, file);
  }
  return ok;
}
