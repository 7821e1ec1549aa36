#!/bin/sh
# The README's test line: installs what the tests need, then runs every test, the real Xen
# hypervisor under QEMU last (it installs its own Debian packages; about 6 minutes).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
npm ci --no-audit --no-fund
npm test
npm run test:xen -- --no-docs
