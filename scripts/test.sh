#!/usr/bin/env bash
# Set up (idempotent) with the test tools, then run the whole test suite: unit, store contract,
# integration on PostgreSQL and Redis, and end-to-end with a real worker, the real engine and a
# real browser. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --with-test-tools
# shellcheck disable=SC1091
. .venv/bin/activate
if [ -f frontend/package.json ]; then
    printf '\033[1m==> %s\033[0m\n' "browser app unit tests (Vitest)"
    (cd frontend && npm test --silent)
fi
printf '\033[1m==> %s\033[0m\n' "pytest"
exec pytest "$@"
