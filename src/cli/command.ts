import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

// What every `xenblkd <command>` module exports (src/cli/commands/<name>.ts).
export interface Command {
  /** One line for `xenblkd --help`. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly usage: string;
  /** Returns the process exit code. Throw UserError for mistakes a user can make. */
  run(argv: string[]): Promise<number>;
}

/** A mistake a user can make: printed as one line, exit code 2, never a stack trace. */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

/** Parses argv with node's parseArgs and turns its errors into UserError. */
export function parseOptions<T extends ParseArgsOptionsConfig>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true as const });
  } catch (e) {
    throw new UserError((e as Error).message.split('\n')[0]);
  }
}
