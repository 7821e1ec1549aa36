#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, type Command } from './command';

const commandsDir = path.join(__dirname, 'commands');

/** In the bundle (scripts/bundle.js) the commands come from a registry instead of a folder. */
const bundled = (globalThis as { __XENBLKD_COMMANDS__?: Record<string, () => { command: Command }> }).__XENBLKD_COMMANDS__;

function commandNames(): string[] {
  if (bundled) return Object.keys(bundled).sort();
  return fs
    .readdirSync(commandsDir)
    .filter((f) => /\.(js|ts)$/.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.map'))
    .map((f) => f.replace(/\.(js|ts)$/, ''))
    .sort();
}

function loadCommand(name: string): Command | undefined {
  if (!/^[a-z][a-z-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  if (bundled) return bundled[name]().command;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(commandsDir, name)) as { command: Command }).command;
}

function topUsage(): string {
  const lines = commandNames().map((n) => `  ${n.padEnd(10)} ${loadCommand(n)?.summary ?? ''}`);
  return `usage: xenblkd <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'xenblkd <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topUsage() + '\n');
    return name ? 0 : 2;
  }
  const command = loadCommand(name);
  if (!command) throw new UserError(`unknown command '${name}' (see 'xenblkd --help')`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage.trimEnd() + '\n');
    return 0;
  }
  return command.run(rest);
}

export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // By name too: bench runs unbundled (scripts/bundle.js), its UserError is another class.
      if (err instanceof UserError || (err as Error | null)?.name === 'UserError') {
        process.stderr.write(`xenblkd: ${(err as UserError).message}\n`);
        process.exitCode = (err as UserError).exitCode ?? 2;
      } else {
        process.stderr.write(`xenblkd: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
        process.exitCode = 70;
      }
    },
  );
}

// The bundle (scripts/bundle.js) calls runCli itself.
if (require.main === module && !bundled) runCli();
