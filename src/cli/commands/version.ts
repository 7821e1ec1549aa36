import { parseOptions, type Command } from '../command';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../../package.json') as { version: string };

export const command: Command = {
  summary: 'print the version',
  usage: 'usage: xenblkd version',
  async run(argv) {
    parseOptions(argv, {});
    process.stdout.write(`xenblkd ${pkg.version}\n`);
    return 0;
  },
};
