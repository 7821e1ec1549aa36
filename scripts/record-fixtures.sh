#!/bin/sh
# Records the session fixtures replayed by test/replay (all of them, or the named scenarios).
# Each recording is replayed before it replaces the fixture. Needs no Xen: the simulated host runs
# in this process; the crash scenario runs the daemon as a child process.
set -eu
cd "$(dirname "$0")/.."
# The crash scenario runs the built daemon.
npm run build --silent
exec node -r ./test/sim-hv/support/register.js scripts/record-fixtures.ts "$@"
