// Records the session fixtures (test/fixtures/sessions) from the simulated world:
//   scripts/record-fixtures.sh [scenario...]
import { recordFixtures } from '../test/replay/support/record-fixtures';

recordFixtures(process.argv.slice(2), (l) => process.stdout.write(`${l}\n`)).then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: Error) => {
    process.stderr.write(`record-fixtures: ${err.message}\n`);
    process.exit(2);
  },
);
