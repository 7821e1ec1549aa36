import * as fs from 'node:fs';
import { UserError, parseOptions, type Command } from '../command';
import { SessionFormatError, parseSession } from '../../replay/parse';
import { replaySession } from '../../replay/replayer';
import { divergenceLines, summaryLine, writeSession } from '../../replay/report';

const usage = `usage: xenblkd replay FILE [--update] [--json] [--allow-truncated]

Replays a recorded session (xenblkd run --record, xenblkd record, xenblkd sim --record): the same
machines are fed the recorded inputs, effects are answered from the recording, the clock is the
recorded one; every transition and every xenstore write is compared with the recording. A daemon
restart without a stop before it is replayed as the crash it was: the machines are recovered from
what the recording says was persisted, through the daemon's own recovery.

  --update           the change in behaviour is intended: rewrite FILE's expected transitions
                     and writes with what this version does (inputs are kept)
  --json             print the result as one JSON object
  --allow-truncated  replay what precedes a torn last line (a recording killed mid-write)

Exit status: 0 identical (or updated), 1 a divergence (the first is printed), 2 unreadable file.`;

export const command: Command = {
  summary: 'replay a recorded session and compare every transition and write',
  usage,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, { update: { type: 'boolean' }, json: { type: 'boolean' }, 'allow-truncated': { type: 'boolean' } }, true);
    if (positionals.length !== 1) throw new UserError('replay takes one session FILE (see --help)');
    const file = positionals[0];
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let session;
    try {
      session = parseSession(text, { allowTruncated: values['allow-truncated'] });
    } catch (err) {
      if (err instanceof SessionFormatError) throw new UserError(`${file}: ${err.message}`);
      throw err;
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    if (session.truncatedLine !== null) process.stderr.write(`xenblkd: ${file}: line ${session.truncatedLine} is torn (cut off while recording); replaying what precedes it\n`);
    const result = await replaySession(session, { update: values.update });
    if (values.json) {
      const { updated: _updated, ...rest } = result;
      out(JSON.stringify({ file, identical: result.divergences === 0, ...rest }));
    } else {
      out(summaryLine(file, result));
      for (const note of result.notes) out(`note: ${note}`);
    }
    if (values.update) {
      const stuck = result.first?.differs.includes('actor') ? result.first : null;
      if (stuck) {
        if (!values.json) for (const l of divergenceLines(stuck)) out(l);
        process.stderr.write(`xenblkd: cannot update ${file}: the inputs no longer fit this version's behaviour; record the session again\n`);
        return 1;
      }
      const changed = result.updated!.filter((r, i) => JSON.stringify(r) !== JSON.stringify(session.records[i])).length;
      if (changed > 0) writeSession(file, session.header, result.updated!);
      if (!values.json) out(changed > 0 ? `${file}: updated the expected part of ${changed} record(s)` : `${file}: nothing to update`);
      return 0;
    }
    if (result.first) {
      if (!values.json) for (const l of divergenceLines(result.first)) out(l);
      return 1;
    }
    return 0;
  },
};
