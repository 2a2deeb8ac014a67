"""Settings for the test suite: the project's settings with test defaults for the environment.

Only defaults are set here; a variable already in the environment wins, so the same suite can
point at a real MongoDB server with MONGODB_URL=mongodb://...
"""

import hashlib
import os
import secrets
from pathlib import Path

# Not the databases of an app that `make run` started on this machine (its PostgreSQL database
# `chat`, its Redis database 0), and not another checkout's: a local run and a CI run on one
# machine each get their own PostgreSQL database (Django's test database is test_<name>).
_CHECKOUT = hashlib.sha256(str(Path(__file__).resolve().parents[1]).encode()).hexdigest()[:8]
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/chat_{_CHECKOUT}")
# The run empties its Redis database at the start (tests/conftest.py) only when it is this
# default: one given in the environment may hold someone's data.
TEST_REDIS_DATABASE_OWNED = "REDIS_URL" not in os.environ
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("MONGODB_URL", "mongomock://")
os.environ.setdefault("CACHE_KEY_PREFIX", "chat-test")
# One random key for the test session and every server it starts (they inherit the
# environment): a session signed here must be valid in a Daphne subprocess. In debug without a
# key each process would draw its own.
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))

from config.settings import *  # noqa: E402, F403

# Hashing speed is not under test; PBKDF2 at production strength would dominate the suite.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Every test client registers from one address; the throttle's own tests set their limit.
REGISTRATION_IP_LIMIT = 100_000

# In-process tests enqueue no title tasks (a test that needs one turns this on); the stacks the
# e2e tests start read the environment, where titles are on by default.
INFERENCE_AUTO_TITLES = False
