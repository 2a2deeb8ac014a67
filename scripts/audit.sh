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
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
for lock in requirements/lock-*.txt; do
    printf '\033[1m==> pip-audit %s\033[0m\n' "$lock"
    # The pinned versions alone, a local label dropped (torch 2.13.0+cpu is audited as the
    # release it is built from, 2.13.0). --disable-pip --no-deps: audit exactly these versions,
    # resolving nothing. --strict: a package that could not be looked up fails the audit
    # rather than passing unchecked (pip-audit otherwise reports "No known vulnerabilities").
    sed -n -E 's/^([A-Za-z0-9_.-]+==[^ +\\]+).*/\1/p' "$lock" > "$pins"
    .venv-audit/bin/pip-audit --disable-pip --no-deps --strict --progress-spinner off -r "$pins" \
        || failed+=("$lock")
done
printf '\033[1m==> npm audit (frontend)\033[0m\n'
(cd frontend && npm audit --audit-level=low) || failed+=("frontend/package-lock.json")

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'audit failed or found vulnerabilities: %s\n' "${failed[*]}"
    exit 1
fi
echo "no known vulnerabilities"
