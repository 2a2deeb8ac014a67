"""Project settings. Every value comes from the environment; `.env.example` documents each one.

A local `.env` file, when present, fills in variables that the environment does not set.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

from config import db_pool
from config.env import (
    WEB_SERVER_MARK,
    ImproperlyConfiguredEnv,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
)
from config.proxy import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

# --- Core -----------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
# No development key is written anywhere: in debug without one, each process draws its own
# (scripts/setup.sh writes a random one into a new .env, so a local app's processes agree).
# With DEBUG off a missing, short, repetitive or "django-insecure-" key stops the process.
SECRET_KEY = env_secret(
    "DJANGO_SECRET_KEY",
    development_default=secrets.token_urlsafe(50),
    required=not DEBUG,
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# Origins allowed to open a cookie-authenticated websocket and to send session-authenticated
# writes (CSRF). Bearer-token clients are not affected by this list.
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_TRUSTED_ORIGINS", ["http://localhost:8000", "http://127.0.0.1:8000"]
)
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "daphne",
    # django.contrib.admin, with the login throttle and two-factor (accounts/admin_site.py).
    "accounts.admin_apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "chat",
    "moderation",
    "inference",
    "api",
    # After every app whose models the admin shows: staff/admin.py audits their admins.
    "staff",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.BearerTokenMiddleware",
    # Request id and user on every log line of the request (config/logs.py).
    "config.logs.IdsMiddleware",
    # After every middleware that sets request.user: the admin asks it whether it is verified.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- PostgreSQL -----------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/chat",
    schemes={"postgres", "postgresql", "pgsql"},
)
# Seconds a thread keeps its PostgreSQL connection for reuse (0: one per request or task). Every
# thread that touches the database holds one: a web process's shared thread and pool threads, a
# worker's threads. Size PostgreSQL's max_connections (or a pooler) for all processes' threads;
# the test stacks use 0, since a test run keeps several stacks up on one server.
DATABASE_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
# Connections in this process's pool (psycopg_pool; 0: no pool, one connection per thread as
# DATABASE_CONN_MAX_AGE says): workers and commands. The web server (config/server.py) always
# pools, WEB_DATABASE_POOL_MAX_SIZE connections: under ASGI Django runs each HTTP request's
# synchronous code on a thread of its own, so persistent per-thread connections pile up, one
# per request, until PostgreSQL refuses more clients (measured: 95 connections after 50
# sign-ups, then HTTP 500; docs/operations.md). A pooled connection goes back to the pool when
# Django closes it, and is checked before it is lent.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0, minimum=0)
WEB_DATABASE_POOL_MAX_SIZE = env_int("WEB_DATABASE_POOL_MAX_SIZE", 16, minimum=1)
if os.environ.get(WEB_SERVER_MARK):
    DATABASE_POOL_MAX_SIZE = WEB_DATABASE_POOL_MAX_SIZE
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=0 if DATABASE_POOL_MAX_SIZE else DATABASE_CONN_MAX_AGE,
        # A reused connection is checked first; with a pool, only one idle for a while
        # (config/db_pool.py: the check is a round trip on every checkout otherwise).
        conn_health_checks=True,
    )
}
if DATABASE_POOL_MAX_SIZE:
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        # Seconds a thread waits for a free connection before its request fails.
        "timeout": 30,
        "reset": db_pool.returned,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache (rate limits, throttles), channel layer, Celery broker ----------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes={"redis", "rediss"})
CACHES = {
    "default": {
        "BACKEND": "config.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "chat"),
    }
}
CHANNEL_LAYERS = {
    "default": {
        # The pub/sub layer: one reader task per process hands each message to its consumer's
        # queue. The list-based RedisChannelLayer lets whichever consumer holds its receive
        # lock pop the next message of *every* consumer in the process; when that consumer
        # disconnects, Channels cancels its receive, and a message popped in that instant
        # (another user's delta or closing message) is gone: issue 12's lost streams.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults socket_timeout to 5 s (redis-py#4091, channels_redis#422);
            # the layer's reader waits on its subscriptions for as long as it likes. One host
            # (one pub/sub connection and its lock) per process: four connections to the same
            # Redis opened a storm of 10,000 websockets no faster (docs/benchmarks.md).
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            # Pub/sub channels belong to the whole Redis server, not to the database number of
            # REDIS_URL: without a prefix of its own, an app sees the events of every other app
            # (or test run) on the same server that names the same user or generation.
            "prefix": f"{CACHES['default']['KEY_PREFIX']}:asgi",
        },
    }
}

# --- MongoDB: the conversation store ----------------------------------------------------------
# mongodb:// or mongodb+srv:// — a real server; mongomock:// — in memory (tests);
# embedded://<path> — a persistent on-disk stand-in for machines without a server.
MONGODB_URL = env_url(
    "MONGODB_URL",
    f"embedded://{DATA_DIR / 'store'}",
    schemes={"mongodb", "mongodb+srv", "mongomock", "embedded"},
)
MONGODB_DB = env_str("MONGODB_DB", "chat")

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes={"redis", "rediss", "amqp"})
CELERY_TASK_ALWAYS_EAGER = False

# --- Accounts --------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_TOKEN_TTL_DAYS = env_int("AUTH_TOKEN_TTL_DAYS", 30, minimum=1)
# The plan (accounts.Plan, by name) of new users; the migrations seed free, pro and team.
ACCOUNTS_DEFAULT_PLAN = env_str("ACCOUNTS_DEFAULT_PLAN", "free")
# Failed logins per email *from one client address*; per email from anywhere the ceiling is
# LOGIN_FAILURE_EMAIL_LIMIT, so a guesser elsewhere cannot lock the owner out (accounts/throttle).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_EMAIL_LIMIT = env_int("LOGIN_FAILURE_EMAIL_LIMIT", 100, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
# Per client address (many people can share one NAT address, hence higher than per email).
LOGIN_FAILURE_IP_LIMIT = env_int("LOGIN_FAILURE_IP_LIMIT", 50, minimum=1)
# Registration attempts per client address within the window, before HTTP 429.
REGISTRATION_IP_LIMIT = env_int("REGISTRATION_IP_LIMIT", 20, minimum=1)
REGISTRATION_WINDOW_SECONDS = env_int("REGISTRATION_WINDOW_SECONDS", 3600, minimum=1)
# JSON 403 for the API, Django's page elsewhere (admin).
CSRF_FAILURE_VIEW = "accounts.api.csrf_failure"
# The admin's URL prefix ("admin/"): a less obvious one keeps scanners off its login page.
ADMIN_URL = env_str("DJANGO_ADMIN_URL", "admin/")
if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*/", ADMIN_URL) or (
    ADMIN_URL.split("/")[0] in {"api", "v1", "ws", "static", "healthz", "readyz", "metrics"}
):
    raise ImproperlyConfiguredEnv(
        "DJANGO_ADMIN_URL", ADMIN_URL, "a path like ops-7f3a/ (no leading slash, one at the end)"
    )
# Staff need a TOTP code (django-otp) to use the admin; `manage.py otp_enroll EMAIL` gives them
# a device. Off: only staff who have a device are asked for its code.
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", not DEBUG)
# The name authenticator apps show beside the code.
OTP_TOTP_ISSUER = env_str("ADMIN_OTP_ISSUER", "Chat")
# A self-registered account signs in only after its owner opens the link emailed to the address
# (accounts/verification.py); registration answers alike for new and taken addresses either way.
ACCOUNTS_VERIFY_EMAIL = env_bool("ACCOUNTS_VERIFY_EMAIL", not DEBUG)
EMAIL_VERIFICATION_MAX_AGE_HOURS = env_int("EMAIL_VERIFICATION_MAX_AGE_HOURS", 72, minimum=1)

# --- Email (verification links) ----------------------------------------------------------------
# "console" prints each email to the web server's log (local development); "smtp" sends it.
EMAIL_BACKEND = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}[env_choice("EMAIL_BACKEND", "console", choices={"console", "smtp"})]
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Chat <no-reply@localhost>")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Chat protocol limits --------------------------------------------------------------------
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 65536, minimum=1024)
CHAT_MAX_CONTENT_CHARS = env_int("CHAT_MAX_CONTENT_CHARS", 32000, minimum=1)
# Largest JSON body accepted by the REST API; larger requests get HTTP 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 262144, minimum=1024)
# Per user, across every process (Redis). 0 turns the per-minute limit or the quota off.
# These four are the values of every plan limit (accounts.Plan) left empty, as the seeded
# `free` plan leaves them all: the user's plan decides, read at each message.
CHAT_RATE_PER_MINUTE = env_int("CHAT_RATE_PER_MINUTE", 20, minimum=0)
CHAT_DAILY_MESSAGE_QUOTA = env_int("CHAT_DAILY_MESSAGE_QUOTA", 1000, minimum=0)
CHAT_MAX_CONCURRENT_GENERATIONS = env_int("CHAT_MAX_CONCURRENT_GENERATIONS", 3, minimum=1)
# Prompt and completion tokens per user per calendar month (UTC); 0: no budget.
CHAT_MONTHLY_TOKEN_BUDGET = env_int("CHAT_MONTHLY_TOKEN_BUDGET", 0, minimum=0)
CHAT_MAX_CONNECTIONS_PER_USER = env_int("CHAT_MAX_CONNECTIONS_PER_USER", 10, minimum=1)
# Websocket handshakes a Daphne process lets through per minute, counted before anything
# authenticates them (chat.limits.connect_refused); 0: no limit. Per credential (a token or a
# session): a client reconnecting in a loop is refused (closed with 4429) instead of keeping
# the process's threads busy authenticating it. Per client address, only the handshakes that
# failed to authenticate count, so that users sharing an address (an office, carrier NAT) do
# not limit each other, while guessing credentials from one address is bounded.
CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL = env_int(
    "CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL", 60, minimum=0
)
CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS = env_int(
    "CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS", 120, minimum=0
)
CHAT_FRAMES_PER_SECOND_PER_CONNECTION = env_int(
    "CHAT_FRAMES_PER_SECOND_PER_CONNECTION", 10, minimum=1
)
CHAT_FRAMES_PER_MINUTE_PER_USER = env_int("CHAT_FRAMES_PER_MINUTE_PER_USER", 600, minimum=1)
# A connection refused this many frames within a minute keeps flooding: it is closed with 4429.
CHAT_FLOOD_CLOSE_AFTER_REFUSALS = env_int("CHAT_FLOOD_CLOSE_AFTER_REFUSALS", 50, minimum=1)
# Messages a conversation may hold; a chat.send or regenerate into a full one is `too_large`.
CHAT_MAX_MESSAGES_PER_CONVERSATION = env_int("CHAT_MAX_MESSAGES_PER_CONVERSATION", 1000, minimum=1)
# Messages one `GET /api/conversations/{id}` returns at most (its default and its largest
# `limit`); `messages_next_cursor` continues. As large as a conversation by default, so clients
# that do not page still get every message.
CHAT_MESSAGES_PAGE_MAX = env_int("CHAT_MESSAGES_PAGE_MAX", 1000, minimum=1)
# Matching messages, newest first, that one search (`?q=`) reads to find conversations by text.
CHAT_SEARCH_MAX_MESSAGES = env_int("CHAT_SEARCH_MAX_MESSAGES", 1000, minimum=1)
# Seconds a process reuses its /readyz result: the public probe costs the stores at most one
# round of checks per process per interval, however often it is called. 0: check every call.
READYZ_CACHE_SECONDS = env_float("READYZ_CACHE_SECONDS", 1.0, minimum=0.0)
# Generations waiting for a worker, per model, past which chat.send is answered `busy`.
# Threads that admit chat.send and regenerate frames in a web process (chat/generation/pool.py):
# 1 runs admission on Channels' one shared thread, first in, first out; more overlap each
# admission's round trips to Redis and PostgreSQL (docs/benchmarks.md, "Admission").
CHAT_ADMISSION_THREADS = env_int("CHAT_ADMISSION_THREADS", 1, minimum=1)
CHAT_MAX_QUEUE_DEPTH = env_int("CHAT_MAX_QUEUE_DEPTH", 256, minimum=1)
# Seconds a web process reuses its snapshot of the enabled models and their serving versions
# (chat/catalog.py): an admin's edit made in another process applies within this time. 0: read
# the registry at every admission.
CHAT_CATALOG_SECONDS = env_float("CHAT_CATALOG_SECONDS", 1.0, minimum=0.0)
# The by-task router's message embedding (chat/route_embedding.py): "static", MiniLM distilled
# into a word-piece table (~0.1 ms a message), or "full", the whole model (~11 ms).
ROUTER_EMBEDDING = env_choice("ROUTER_EMBEDDING", "static", choices={"static", "full"})
# Daphne's keepalive (passed as --ping-interval/--ping-timeout by scripts/run.sh, the
# Dockerfile and the test stack): a connection idle this long is pinged, and closed when the
# pong does not come within the timeout. Read here so that a bad value fails at start.
CHAT_WS_PING_INTERVAL_SECONDS = env_int("CHAT_WS_PING_INTERVAL_SECONDS", 20, minimum=1)
CHAT_WS_PING_TIMEOUT_SECONDS = env_int("CHAT_WS_PING_TIMEOUT_SECONDS", 20, minimum=1)
# Seconds Daphne gives a websocket to open, the application's accept included (after the
# authentication and the connection slot); past it the handshake is dropped
# (--websocket_connect_timeout). Daphne's 5 s turned a storm of 10,000 connections into
# 9,847 dropped handshakes, whose authentication the server did all the same
# (docs/benchmarks.md, "Idle websockets per Daphne process").
CHAT_WS_CONNECT_TIMEOUT_SECONDS = env_int("CHAT_WS_CONNECT_TIMEOUT_SECONDS", 60, minimum=1)
# Connections the web server's listening socket queues before it accepts them (the listen
# backlog; the kernel caps it at net.core.somaxconn, 4096 by default). Twisted's 50 dropped
# 21,135 handshakes of that storm, which came back after SYN retries of 1, 3, 7... s.
CHAT_LISTEN_BACKLOG = env_int("CHAT_LISTEN_BACKLOG", 4096, minimum=1)
# Seconds after which an open websocket authenticates its credential again: before it handles
# the next frame, and about this often (times 1 to 1.5) while idle. Logout, revocation, a
# password change and a suspension close connections at once; this catches an expiry or a
# lost event. 0: only at once. 10,000 idle sockets cost about 11 checks a second at 900.
CHAT_CREDENTIALS_RECHECK_SECONDS = env_int("CHAT_CREDENTIALS_RECHECK_SECONDS", 900, minimum=0)

# --- OpenAI-compatible API (/v1/) and API keys -----------------------------------------------

API_KEYS_PER_USER = env_int("API_KEYS_PER_USER", 20, minimum=1)
API_KEY_MAX_EXPIRY_DAYS = env_int("API_KEY_MAX_EXPIRY_DAYS", 3650, minimum=1)
# One chat completion request: its messages, and their characters all together.
API_MAX_MESSAGES = env_int("API_MAX_MESSAGES", 256, minimum=1)
API_MAX_INPUT_CHARS = env_int("API_MAX_INPUT_CHARS", 100000, minimum=1)  # within API_MAX_BODY_BYTES

# --- Metrics (GET /metrics, config/metrics.py) -----------------------------------------------
# A bearer token for Prometheus; staff members' own bearer tokens work too. Empty: staff only.
# Processes share their samples through PROMETHEUS_MULTIPROC_DIR (read by prometheus-client
# itself from the environment: scripts/run.sh sets it for every process and empties it).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN:
    METRICS_TOKEN = env_secret("METRICS_TOKEN", development_default="", required=not DEBUG)

# A port on which each Celery worker serves its own metrics (GET /metrics, METRICS_TOKEN only),
# for deployments whose processes share no PROMETHEUS_MULTIPROC_DIR (docker-compose: one
# container per worker); 0: off, the web's /metrics merges the workers' samples instead.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0, maximum=65535)

# --- Processes -------------------------------------------------------------------------------
# The GIL switch interval of the web server and the worker (config/process.py). CPython's 5 ms
# made a chat.send's store work 45x slower beside one busy thread (5 ms alone, 220 ms); 0.5 ms
# brought it to 26 ms (docs/benchmarks.md).
PYTHON_SWITCH_INTERVAL_MS = env_float("PYTHON_SWITCH_INTERVAL_MS", 0.5, minimum=0.05)

# --- Inference worker ------------------------------------------------------------------------
INFERENCE_MODEL_DIR = Path(env_str("INFERENCE_MODEL_DIR", str(DATA_DIR / "models")))
INFERENCE_FLUSH_INTERVAL_SECONDS = (
    env_float("INFERENCE_FLUSH_INTERVAL_MS", 30.0, minimum=1.0) / 1000
)
INFERENCE_CHECKPOINT_SECONDS = env_float("INFERENCE_CHECKPOINT_SECONDS", 1.0, minimum=0.1)
INFERENCE_MAX_NUM_SEQS = env_int("INFERENCE_MAX_NUM_SEQS", 32, minimum=1)
INFERENCE_GPU_MEMORY_UTILIZATION = env_float("INFERENCE_GPU_MEMORY_UTILIZATION", 0.85, minimum=0.05)
INFERENCE_LOAD_FORMAT = env_str("INFERENCE_LOAD_FORMAT", "auto")
INFERENCE_DTYPE = env_choice(
    "INFERENCE_DTYPE", "auto", choices={"auto", "bfloat16", "float16", "float32"}
)
# Run the model eagerly instead of compiled; "auto": eager on a CPU, compiled on a GPU.
INFERENCE_ENFORCE_EAGER = env_choice(
    "INFERENCE_ENFORCE_EAGER", "auto", choices={"auto", "true", "false"}
)
# KV cache size of vLLM's CPU backend (GiB); ignored on a GPU.
INFERENCE_CPU_KVCACHE_GIB = env_int("INFERENCE_CPU_KVCACHE_GIB", 1, minimum=1)
# oneDNN's process-wide cache of compiled kernels in the engine's processes (CPU only; unset
# with "default": oneDNN's 1,024). vLLM keeps the kernels it reuses itself; a larger cache
# only grows the engine's memory under varied traffic (docs/benchmarks.md).
INFERENCE_ONEDNN_PRIMITIVE_CACHE = (
    None
    if env_str("INFERENCE_ONEDNN_PRIMITIVE_CACHE", "8") == "default"
    else env_int("INFERENCE_ONEDNN_PRIMITIVE_CACHE", 8, minimum=0)
)
# Longest one generation may run; the broker's visibility timeout is set well above it.
INFERENCE_TASK_TIME_LIMIT_SECONDS = env_int("INFERENCE_TASK_TIME_LIMIT_SECONDS", 600, minimum=10)
# An engine that gives no output for this long while generations stream on it is stalled (its
# processes alive, no step made): the worker leaves, and the supervisor starts a fresh one,
# as for a dead engine. 0 turns the watchdog off.
INFERENCE_STALL_SECONDS = env_int("INFERENCE_STALL_SECONDS", 120, minimum=0)
# vLLM's own `vllm:*` metrics (queue, batch, KV cache, latencies per engine) on /metrics.
INFERENCE_ENGINE_METRICS = env_bool("INFERENCE_ENGINE_METRICS", True)
# Start the engine when the worker starts instead of on its first task.
INFERENCE_PRELOAD = env_bool("INFERENCE_PRELOAD", True)
# How often a worker reads its model's serving versions: it loads a new active or canary
# version's engine, and drains then unloads one that stopped serving (docs/models.md).
INFERENCE_VERSION_POLL_SECONDS = env_float("INFERENCE_VERSION_POLL_SECONDS", 5.0, minimum=0.5)
# Benchmarks only: generate exactly max_tokens (the end-of-sequence token is ignored).
INFERENCE_IGNORE_EOS = env_bool("INFERENCE_IGNORE_EOS", False)
# After a conversation's first answer, the model writes its title (low priority).
INFERENCE_AUTO_TITLES = env_bool("INFERENCE_AUTO_TITLES", True)
# The response cache (inference/cache/): seconds an answer to a deterministic request
# (temperature 0 or a fixed seed) is kept in Redis; 0 turns the cache off.
INFERENCE_CACHE_TTL_SECONDS = env_int("INFERENCE_CACHE_TTL_SECONDS", 86400, minimum=0)
# Cosine similarity at or above which the semantic cache (opt-in per model) takes two first
# questions for the same; calibrated on inference/data/semantic_cache_pairs.jsonl.
INFERENCE_SEMANTIC_CACHE_THRESHOLD = env_float(
    "INFERENCE_SEMANTIC_CACHE_THRESHOLD", 0.95, minimum=0.5
)
# Questions the semantic cache remembers per partition (a user, or everyone when shared).
INFERENCE_SEMANTIC_CACHE_ENTRIES = env_int("INFERENCE_SEMANTIC_CACHE_ENTRIES", 500, minimum=1)
# A streaming generation refreshes its heartbeat at least this often, even while no token
# comes (a long prefill, a full batch); the reaper interrupts one silent for STALE_AFTER.
INFERENCE_HEARTBEAT_SECONDS = env_float("INFERENCE_HEARTBEAT_SECONDS", 5.0, minimum=0.5)
# A running generation that published nothing for this long sends generation.progress.
INFERENCE_PROGRESS_SECONDS = env_float("INFERENCE_PROGRESS_SECONDS", 2.0, minimum=0.2)
INFERENCE_STALE_AFTER_SECONDS = env_int("INFERENCE_STALE_AFTER_SECONDS", 30, minimum=5)
# How often Celery beat runs the reaper (`inference.reap_stale`).
INFERENCE_REAP_INTERVAL_SECONDS = env_int("INFERENCE_REAP_INTERVAL_SECONDS", 15, minimum=1)
# Maintenance tasks (the reaper) go here; every inference worker also consumes it.
INFERENCE_MAINTENANCE_QUEUE = "inference.maintenance"

# Celery settings that follow from the ones above (the rest are in config/celery.py).
# The threads pool does not enforce time limits: the stream enforces the generation limit
# itself, and the task bounds its wait for the engine loop (inference.tasks).
CELERY_TASK_TIME_LIMIT = INFERENCE_TASK_TIME_LIMIT_SECONDS + 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Seconds Redis waits for an acknowledgement before handing a task to another worker:
    # longer than any generation, else a task still running would be delivered twice.
    "visibility_timeout": max(3600, 2 * INFERENCE_TASK_TIME_LIMIT_SECONDS),
    # Ten priority levels. On the Redis transport 0 is served FIRST (on RabbitMQ, 9 is).
    "priority_steps": list(range(10)),
}
CELERY_BEAT_SCHEDULE = {
    "inference-reap-stale": {
        "task": "inference.reap_stale",
        "schedule": float(INFERENCE_REAP_INTERVAL_SECONDS),
        # A run nobody picked up in time is dropped rather than piling up.
        "options": {
            "queue": INFERENCE_MAINTENANCE_QUEUE,
            "expires": INFERENCE_REAP_INTERVAL_SECONDS,
        },
    }
}

# --- Moderation ------------------------------------------------------------------------------
# Checks in run order (short names or dotted paths under moderation.checks.); admins can
# override each from the admin ("Check settings").
MODERATION_CHECKS = env_list(
    "MODERATION_CHECKS",
    ["pii", "rules", "language", "patterns", "profanity", "toxicity", "semantic"],
)
# Languages the checks are written for (ISO 639-1); a message confidently detected as another
# gets MODERATION_UNSUPPORTED_LANGUAGE_ACTION: check (the other checks only), flag (sent and
# recorded for review) or block (refused).
MODERATION_LANGUAGES = env_list("MODERATION_LANGUAGES", ["en", "es", "fr", "de", "pt", "it"])
MODERATION_UNSUPPORTED_LANGUAGE_ACTION = env_choice(
    "MODERATION_UNSUPPORTED_LANGUAGE_ACTION", "flag", choices={"check", "flag", "block"}
)
# What to do per category of the policy (moderation/policy.py), as CATEGORY=ACTION with
# ACTION block, flag (sent, recorded for review) or allow; unlisted categories block.
MODERATION_CATEGORY_ACTIONS = env_list("MODERATION_CATEGORY_ACTIONS", [])
# User messages of a conversation that moderation keeps (in the cache, an hour) and reads
# before each new one, so that a request split across messages is caught (0: off).
MODERATION_CONTEXT_TURNS = env_int("MODERATION_CONTEXT_TURNS", 3, minimum=0)
# Checks whose errors block the text instead of letting it through.
MODERATION_FAIL_CLOSED = env_list("MODERATION_FAIL_CLOSED", [])
# Categories for which a failed check fails closed after all when an earlier check flagged the
# text in one of them ("self-harm" covers "self-harm/instructions"): a guard model that should
# have confirmed a flag cannot let the text through by timing out.
MODERATION_FAIL_CLOSED_CATEGORIES = env_list("MODERATION_FAIL_CLOSED_CATEGORIES", [])
# Milliseconds the input checks of one message may take (0: no budget). Checked between
# checks: a message whose checks have not all run by then is refused as "unchecked".
MODERATION_INPUT_BUDGET_MS = env_int("MODERATION_INPUT_BUDGET_MS", 1000, minimum=0)
# A block by a check that judges words without intent (patterns, semantic) becomes a flag when
# the text shows a protective intent and makes no operational ask (moderation/intent.py).
MODERATION_PROTECTIVE_INTENT = env_bool("MODERATION_PROTECTIVE_INTENT", True)
MODERATION_PROFANITY_ACTION = env_choice(
    "MODERATION_PROFANITY_ACTION", "flag", choices={"flag", "block"}
)
MODERATION_TOXICITY_BLOCK_THRESHOLD = env_float(
    "MODERATION_TOXICITY_BLOCK_THRESHOLD", 0.9, minimum=0.0
)
MODERATION_TOXICITY_FLAG_THRESHOLD = env_float(
    "MODERATION_TOXICITY_FLAG_THRESHOLD", 0.8, minimum=0.0
)
# Probability (0-1) that a text is not benign at which the semantic check blocks.
MODERATION_SEMANTIC_THRESHOLD = env_float("MODERATION_SEMANTIC_THRESHOLD", 0.7, minimum=0.0)
# How much an English-only model of the semantic check (MiniLM) weighs, against the
# multilingual one, on a text confidently in another language (0 to 1; 1: equal weights;
# docs/moderation.md, "Twenty-first session").
MODERATION_SEMANTIC_FOREIGN_WEIGHT = env_float(
    "MODERATION_SEMANTIC_FOREIGN_WEIGHT", 0.5, minimum=0.0
)
if MODERATION_SEMANTIC_FOREIGN_WEIGHT > 1.0:
    raise ImproperlyConfiguredEnv(
        "MODERATION_SEMANTIC_FOREIGN_WEIGHT",
        str(MODERATION_SEMANTIC_FOREIGN_WEIGHT),
        "a number from 0 to 1",
    )
# Torch threads for the semantic check's model (process-wide; 0 leaves torch's default). One
# thread per call measured fastest on a shared 2-core machine; parallel requests add the rest.
MODERATION_SEMANTIC_TORCH_THREADS = env_int("MODERATION_SEMANTIC_TORCH_THREADS", 1, minimum=0)
# MiniLM in bfloat16: "auto" (where the CPU has native bfloat16: AVX-512 BF16 or AMX), "on",
# "off". 2-3.5x faster for a burst of messages there, the same decisions (docs/moderation.md).
MODERATION_SEMANTIC_BF16 = env_choice(
    "MODERATION_SEMANTIC_BF16", "auto", choices={"auto", "on", "off"}
)
# MiniLM as one TorchScript graph, traced when the model loads (a second or two), where its
# vectors equal the model's: the graph runs without the interpreter lock, so a message's
# embedding no longer waits behind the web process's other threads (docs/moderation.md,
# "MiniLM as one graph"). Off: op by op, as before.
MODERATION_SEMANTIC_GRAPH = env_bool("MODERATION_SEMANTIC_GRAPH", True)
# The sentence-embedding models whose seed-trained classifiers the semantic check averages
# (moderation/checks/embedders.py): all-minilm-l6-v2 (English) and multilingual-e5-small.
# Train the semantic check on the development sets (moderation/data/eval*.jsonl up to blind
# set H, 2,682 labelled lines in twelve languages) besides its seed phrases. Off: the seeds
# alone, as before the fifteenth session (docs/moderation.md, "Blind set I").
MODERATION_SEMANTIC_DEV_SETS = env_bool("MODERATION_SEMANTIC_DEV_SETS", True)
MODERATION_SEMANTIC_MODELS = env_list(
    "MODERATION_SEMANTIC_MODELS", ["all-minilm-l6-v2", "multilingual-e5-small"]
)
if not MODERATION_SEMANTIC_MODELS or not set(MODERATION_SEMANTIC_MODELS) <= {
    "all-minilm-l6-v2",
    "multilingual-e5-small",
}:
    raise ImproperlyConfiguredEnv(
        "MODERATION_SEMANTIC_MODELS",
        ",".join(MODERATION_SEMANTIC_MODELS),
        "a comma-separated list of all-minilm-l6-v2 and/or multilingual-e5-small",
    )
# Where the semantic check keeps the embeddings of its seed phrases between processes (a file
# per model and seed version; without it every process computes them, ~30 s).
MODERATION_SEMANTIC_CACHE_DIR = env_str(
    "MODERATION_SEMANTIC_CACHE_DIR", str(DATA_DIR / "cache" / "moderation")
)
# Directions the semantic check judges: "input" (measured) and/or "output" (opt-in: not yet
# measured on model answers, where a false block ends the answer).
MODERATION_SEMANTIC_DIRECTIONS = env_list("MODERATION_SEMANTIC_DIRECTIONS", ["input"])
if not set(MODERATION_SEMANTIC_DIRECTIONS) <= {"input", "output"}:
    raise ImproperlyConfiguredEnv(
        "MODERATION_SEMANTIC_DIRECTIONS",
        ",".join(MODERATION_SEMANTIC_DIRECTIONS),
        "a comma-separated list of input, output",
    )
MODERATION_PHONE_REGION = env_str("MODERATION_PHONE_REGION", "US")
MODERATION_RULES_REFRESH_SECONDS = env_float("MODERATION_RULES_REFRESH_SECONDS", 1.0, minimum=0.05)
MODERATION_WINDOW_CHARS = env_int("MODERATION_WINDOW_CHARS", 200, minimum=20)
MODERATION_OVERLAP_CHARS = env_int("MODERATION_OVERLAP_CHARS", 64, minimum=0)
MODERATION_FIRST_WINDOW_CHARS = env_int("MODERATION_FIRST_WINDOW_CHARS", 1, minimum=0)
MODERATION_EVENT_CONTEXT_CHARS = env_int("MODERATION_EVENT_CONTEXT_CHARS", 2000, minimum=100)
MODERATION_SELF_HARM_MESSAGE = env_str("MODERATION_SELF_HARM_MESSAGE", "")
MODERATION_GUARD_URL = env_str("MODERATION_GUARD_URL", "")
if MODERATION_GUARD_URL:
    MODERATION_GUARD_URL = env_url(
        "MODERATION_GUARD_URL", MODERATION_GUARD_URL, schemes={"http", "https"}
    )
MODERATION_GUARD_MODEL = env_str("MODERATION_GUARD_MODEL", "llama-guard")
MODERATION_GUARD_API_KEY = env_str("MODERATION_GUARD_API_KEY", "")
# A classification prompt for a general instruct model (moderation/checks/guard.py); empty for a
# guard model whose chat template carries its policy (Llama Guard).
MODERATION_GUARD_PROMPT_FILE = env_str("MODERATION_GUARD_PROMPT_FILE", "")
# Score by the first word's log probabilities (off for an endpoint that refuses `logprobs`).
MODERATION_GUARD_LOGPROBS = env_bool("MODERATION_GUARD_LOGPROBS", True)
MODERATION_GUARD_TIMEOUT_SECONDS = env_float("MODERATION_GUARD_TIMEOUT_SECONDS", 2.0, minimum=0.05)
MODERATION_GUARD_FAILURE_POLICY = env_choice(
    "MODERATION_GUARD_FAILURE_POLICY", "open", choices={"open", "closed"}
)
MODERATION_GUARD_BREAKER_FAILURES = env_int("MODERATION_GUARD_BREAKER_FAILURES", 3, minimum=1)
MODERATION_GUARD_BREAKER_RESET_SECONDS = env_float(
    "MODERATION_GUARD_BREAKER_RESET_SECONDS", 30.0, minimum=1.0
)

# --- Static files and the browser app --------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
FRONTEND_DIST_DIR = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST_DIR] if FRONTEND_DIST_DIR.is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (production defaults whenever DEBUG is off) -------------------------------------
SECURE_COOKIES = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Opt-in: the browsers' preload list binds the whole domain and every subdomain to HTTPS for
# months, and leaving it takes a removal request, so only its owner may ask for it.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# Django's deployment check asks for preload (W021); leaving it off is the decision above.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Load balancers and orchestrators probe, and Prometheus scrapes, over plain HTTP inside the
# network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every response (django-csp; config/csp.py adds the websocket's
# origin to connect-src). No inline scripts, no remote images: model output that slipped past
# the sanitiser still cannot load anything from elsewhere or send data there.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Addresses or CIDR ranges of the reverse proxies in front of Daphne. Only from these peers is
# X-Forwarded-For read (its right-most untrusted hop is the client); from any other peer the
# forwarding headers are dropped (config/proxy.py). Empty: clients connect directly.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
try:
    parse_networks(TRUSTED_PROXIES)
except ValueError as error:
    raise ImproperlyConfiguredEnv(
        "TRUSTED_PROXIES", ",".join(TRUSTED_PROXIES), f"IP addresses or CIDR ranges ({error})"
    ) from None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Structured logs (config/logs.py): "json", one JSON object per line with the request, user,
# conversation and generation ids (the default with DEBUG off), or "text" for reading in a terminal.
LOG_FORMAT = env_choice("LOG_FORMAT", "text" if DEBUG else "json", choices={"json", "text"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "config.logs.IdsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(ids)s]: %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["ids"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Django's own console handler (DEBUG only) would print its lines a second time, as text.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}
