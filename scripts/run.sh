#!/usr/bin/env bash
# Set up (idempotent), then run the whole app: an inference worker hosting vLLM with the
# default model, Celery beat, and Daphne serving the API, websockets and the browser app.
# Ctrl-C stops everything this script started.
#
# INFERENCE_SERVE_MODELS=smollm2-135m,gemma3-270m serves more models (registry names): each is
# prepared (manage.py prepare_model), enabled in the registry, and gets a worker of its own on
# its queue (docs/operations.md, "Models"). Empty: the default model only.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
# .env gives the defaults; a variable already in the environment wins, as in the settings
# (config/settings.py loads .env the same way): `PORT=8001 make run` runs on port 8001.
while IFS='=' read -r key value || [[ -n $key ]]; do
    [[ $key =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
    [[ -v $key ]] || export "$key=$value"
done < .env

# The C allocator (APP_ALLOCATOR): jemalloc for Daphne and the maintenance worker, where it is
# installed. glibc's malloc fragments under the web server's threads: its RSS kept growing in
# the soak, which jemalloc's did not (docs/benchmarks.md, "Fourteenth session"). Not the model
# workers: their growth did not change, and an engine's load peaked higher under jemalloc.
preload=()
if [ "${APP_ALLOCATOR:-jemalloc}" = jemalloc ]; then
    # grep reads to the end (no -q): under pipefail, a grep that quits at its first match can
    # leave ldconfig writing into a closed pipe (SIGPIPE), and the test would read as "absent".
    if ldconfig -p | grep 'libjemalloc\.so\.2 ' >/dev/null; then
        preload=(env "LD_PRELOAD=libjemalloc.so.2${LD_PRELOAD:+:$LD_PRELOAD}")
    else
        echo "APP_ALLOCATOR=jemalloc but libjemalloc.so.2 is not installed: glibc's malloc it is"
    fi
fi

# Prometheus multiprocess mode: every process below writes its samples here and /metrics
# merges them (config/metrics.py). Emptied at each start: a previous run's samples would count.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-${DATA_DIR:-var}/metrics}
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
# Logs and the beat schedule live under DATA_DIR (./var), like the rest of the local data.
log_dir=${DATA_DIR:-var}/log
if [ -n "${INFERENCE_SERVE_MODELS:-}" ]; then
    # setup.sh prepared the default model; these are prepared (once) and offered to users.
    IFS=',' read -ra serve_models <<<"$INFERENCE_SERVE_MODELS"
    python manage.py prepare_model --enable "${serve_models[@]}"
    # Several models: `model: "auto"` chooses among them; its by-task table, once (~40 s).
    python manage.py router_table
fi
# "name queue" per served model: the listed ones, else the default model.
served=$(python manage.py shell -v 0 -c "
import os; from inference.selectors import model_list_served
for m in model_list_served(names=os.environ.get('INFERENCE_SERVE_MODELS', '')): print(m.name, m.queue)")
[ -n "$served" ] || { echo "no enabled model to serve (INFERENCE_SERVE_MODELS=${INFERENCE_SERVE_MODELS:-})"; exit 1; }
mkdir -p "$log_dir"

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo "stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Restart a worker that exits, as a process supervisor would: an engine that died makes its
# worker exit on purpose, and Celery's Redis transport can exit on a lost broker.
# Stopped (SIGINT from the terminal, then SIGTERM from cleanup), it waits until the child has
# gone: a signal that arrives during `wait` ends the wait early, and a worker's warm shutdown
# (its engine's included) can outlast the first one.
supervise() {
    local child
    trap 'kill -TERM "$child" 2>/dev/null; while kill -0 "$child" 2>/dev/null; do wait "$child"; done; exit 0' TERM INT
    while :; do
        "$@" &
        child=$!
        wait "$child" || true
        echo "$(date -Is) exited, restarting in 2 s: $*" >&2
        sleep 2
    done
}

# One worker per model: each process hosts one engine (inference/engine.py), and a model's
# worker restarts without touching the others. The first (the default model) keeps the names
# it always had: gpu@host, worker.log.
# vLLM's CPU backend binds every engine's compute to the same cores by default: two engines on
# 2 cores then shared one core (11 tokens/s together at one stream each, 52 at four, against 18
# and 101 with a core each; docs/operations.md). So with several models each worker gets its
# own share of the cores, unless VLLM_CPU_OMP_THREADS_BIND is set (a GPU engine ignores it).
models=$(wc -l <<<"$served")
cores=$(nproc)
index=0
while read -r name queue; do
    if [ "$index" -eq 0 ]; then node="gpu@%h" log="worker.log"
    else node="gpu-$name@%h" log="worker-$name.log"; fi
    bind=()
    if [ "$models" -gt 1 ] && [ -z "${VLLM_CPU_OMP_THREADS_BIND:-}" ]; then
        first_core=$((index * cores / models)) last_core=$(((index + 1) * cores / models - 1))
        if [ "$cores" -lt "$models" ]; then first_core=$((index % cores)) last_core=$first_core; fi
        cpus=$first_core
        [ "$last_core" -gt "$first_core" ] && cpus="$first_core-$last_core"
        bind=(env "VLLM_CPU_OMP_THREADS_BIND=$cpus")
    fi
    supervise "${bind[@]}" celery -A config --quiet worker -P threads -c "${WORKER_CONCURRENCY:-32}" \
        -Q "$queue" -n "$node" --without-gossip --without-mingle -l info >>"$log_dir/$log" 2>&1 &
    pids+=($!)
    index=$((index + 1))
done <<<"$served"
# Beat embedded in a small maintenance worker: the reaper keeps running while every
# inference worker is down (it is what notices that they are).
supervise "${preload[@]}" celery -A config --quiet worker -B -s "${DATA_DIR:-var}/celerybeat-schedule" -Q inference.maintenance \
    -P threads -c 2 -n "maintenance@%h" --without-gossip --without-mingle -l info \
    >>"$log_dir/beat.log" 2>&1 &
pids+=($!)
# Daphne with the protocol's frame limit and keepalive from settings (config/server.py).
"${preload[@]}" python -m config.server -b "$HOST" -p "$PORT" config.asgi:application >"$log_dir/web.log" 2>&1 &
pids+=($!)

printf 'waiting for the worker to load the model'
for _ in $(seq 180); do
    if curl -fsS "http://$HOST:$PORT/readyz" >/dev/null 2>&1; then break; fi
    printf '.'; sleep 2
done
echo
curl -fsS "http://$HOST:$PORT/readyz" || { echo "not ready: see $log_dir/*.log"; exit 1; }
echo
printf '\033[1mThe app is running at http://%s:%s/ (logs in %s/). Ctrl-C stops it.\033[0m\n' "$HOST" "$PORT" "$log_dir"
wait -n "${pids[@]}"
