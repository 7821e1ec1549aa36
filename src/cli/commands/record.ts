import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';
import { controlRequest } from '../../daemon/control';

const usage = `usage: xenblkd record --state-dir DIR FILE
       xenblkd record --state-dir DIR --stop

Turns session recording on (into FILE, appended if it exists) or off in the daemon running with
state folder DIR, without restarting it. The session starts from a checkpoint of every device's
state; 'xenblkd replay FILE' checks it.

  --state-dir DIR  the running daemon's state folder (default /var/lib/xenblkd)
  --stop           stop recording`;

export const command: Command = {
  summary: 'turn session recording on or off in a running daemon',
  usage,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, { 'state-dir': { type: 'string' }, stop: { type: 'boolean' } }, true);
    const stateDir = values['state-dir'] ?? '/var/lib/xenblkd';
    if (values.stop ? positionals.length !== 0 : positionals.length !== 1) throw new UserError('record takes a session FILE, or --stop (see --help)');
    const socket = path.join(stateDir, 'control.sock');
    if (!fs.existsSync(socket)) throw new UserError(`no daemon runs with state folder ${stateDir} (${socket} not found)`);
    const request = values.stop ? { op: 'record', stop: true } : { op: 'record', file: path.resolve(positionals[0]) };
    let reply: { recording?: string; stopped?: string; records?: number };
    try {
      reply = (await controlRequest(socket, request)) as typeof reply;
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    process.stdout.write(reply.stopped !== undefined ? `stopped recording ${reply.stopped} (${reply.records} records)\n` : `recording to ${reply.recording}\n`);
    return 0;
  },
};
