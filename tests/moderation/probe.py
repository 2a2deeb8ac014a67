"""A separate process that moderates a fixed text in a loop and reports each change of
decision: stands in for a web or worker process that never restarts."""

from __future__ import annotations

import os
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event


def run_probe(database_url: str, cache_prefix: str, text: str, results: Queue, stop: Event) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["CACHE_KEY_PREFIX"] = cache_prefix
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from moderation import pipeline
    from moderation.types import Direction

    last = None
    # Loading the checks (the first run) may take a minute on a cold cache; the loop runs at
    # most this long after it.
    deadline = time.monotonic() + 240
    while not stop.is_set() and time.monotonic() < deadline:
        action = pipeline.run(text, direction=Direction.INPUT).action.value
        if action != last:
            results.put((time.time(), action))
            last = action
        time.sleep(0.05)
