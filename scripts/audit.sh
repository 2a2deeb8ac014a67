#!/usr/bin/env bash
# Known vulnerabilities in what the project installs (`make audit`): pip-audit on every hashed
# lock file in requirements/, and npm audit on the browser app's lock file. Both ask advisory
# services on the internet (PyPI's JSON API and OSV; the npm registry's audit endpoint), which
# this project's own machines and CI cannot reach: run it where they can, e.g. a scheduled CI
# job with network access. Exits non-zero when any audit finds something or cannot run.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
# pip-audit in a venv of its own: it is not a dependency of the app.
if [ ! -x .venv-audit/bin/pip-audit ]; then
    python3 -m venv .venv-audit && .venv-audit/bin/pip install -q pip-audit || exit 1
fi
for lock in requirements/lock-*.txt; do
    printf '\033[1m==> pip-audit %s\033[0m\n' "$lock"
    # --disable-pip --require-hashes: audit exactly the pinned files, without resolving again.
    .venv-audit/bin/pip-audit --disable-pip --require-hashes --progress-spinner off -r "$lock" \
        || failed+=("$lock")
done
printf '\033[1m==> npm audit (frontend)\033[0m\n'
(cd frontend && npm audit --audit-level=low) || failed+=("frontend/package-lock.json")

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'audit failed or found vulnerabilities: %s\n' "${failed[*]}"
    exit 1
fi
echo "no known vulnerabilities"
