#!/bin/sh
# The README's test line: installs what the tests need, then runs every test.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
npm ci --no-audit --no-fund
npm test
