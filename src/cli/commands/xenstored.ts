import { UserError, parseOptions, type Command } from '../command';
import type { XsLogger } from '../../io/xs/logger';
import { XenstoredServer } from '../../io/xs/server/server';

const usage = `usage: xenblkd xenstored --socket PATH [--persist DIR] [--domain-socket N:PATH ...] [--verbose]

Runs the embedded xenstored in the foreground until SIGTERM or SIGINT.

  --socket PATH          serve dom0 (privileged) connections on this unix socket
  --persist DIR          keep the tree in this LevelDB folder and load it at start
  --domain-socket N:PATH serve connections acting as domain N on PATH (repeatable)
  --verbose              log debug lines too

Point xenstore-utils or pyxs at it with XENSTORED_PATH=PATH.`;

/** One line per log call on stderr. */
function stderrLogger(verbose: boolean): XsLogger {
  const line = (level: string) => (objOrMsg: object | string, msg?: string) => {
    const text = typeof objOrMsg === 'string' ? objOrMsg : `${msg ?? ''} ${JSON.stringify(objOrMsg)}`;
    process.stderr.write(`${level}: ${text.trim()}\n`);
  };
  return { debug: verbose ? line('debug') : () => {}, info: line('info'), warn: line('warn'), error: line('error') };
}

function parseDomainSocket(spec: string): { domid: number; path: string } {
  const m = /^(\d{1,5}):(.+)$/.exec(spec);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 0x7fef) {
    throw new UserError(`--domain-socket takes N:PATH with a guest domain id N (1..32751), got '${spec}'`);
  }
  return { domid: Number(m[1]), path: m[2] };
}

export const command: Command = {
  summary: 'run the embedded xenstored (a xenstored-compatible server)',
  usage,
  async run(argv) {
    const { values } = parseOptions(argv, {
      socket: { type: 'string' },
      persist: { type: 'string' },
      'domain-socket': { type: 'string', multiple: true },
      verbose: { type: 'boolean' },
    });
    if (!values.socket) throw new UserError('--socket PATH is required');
    const domainSockets = (values['domain-socket'] ?? []).map(parseDomainSocket);
    const log = stderrLogger(values.verbose === true);

    let server: XenstoredServer;
    try {
      server = await XenstoredServer.open({ persistDir: values.persist, logger: log });
    } catch (e) {
      throw new UserError(`cannot open persistence folder ${values.persist}: ${(e as Error).message.split('\n')[0]}`);
    }
    const listening: string[] = [];
    try {
      await server.listen(values.socket);
      listening.push(`${values.socket} (dom0)`);
      for (const d of domainSockets) {
        await server.listen(d.path, { domid: d.domid });
        listening.push(`${d.path} (dom${d.domid})`);
      }
    } catch (e) {
      await server.close();
      throw new UserError(`cannot listen: ${(e as Error).message.split('\n')[0]}`);
    }
    process.stdout.write(`xenstored ready on ${listening.join(', ')}\n`);

    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    await server.close();
    return 0;
  },
};
