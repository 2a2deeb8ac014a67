"""`GET /metrics`: the Prometheus text of every process (`config/metrics.py`), for the
configured METRICS_TOKEN or a staff member's bearer token; and the same text served by a
worker process itself (`worker_metrics_serve`, WORKER_METRICS_PORT) where processes share no
multiprocess directory."""

from __future__ import annotations

import hmac
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from accounts.middleware import bearer_token_from_header
from accounts.selectors import user_for_token
from config.errors import ApiError, error_response
from config.metrics import exposition

logger = logging.getLogger(__name__)


def _denied(code: str, message: str) -> HttpResponse:
    response = error_response(ApiError(code, message))
    if code == "unauthorized":
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: for `Authorization: Bearer <METRICS_TOKEN>` or a staff member's
    bearer token; 401 without a valid credential, 403 for a user who is not staff."""
    raw = bearer_token_from_header(request.headers.get("Authorization"))
    if raw is None:
        return _denied(
            "unauthorized", "Send METRICS_TOKEN or a staff bearer token as 'Authorization: Bearer'."
        )
    configured = settings.METRICS_TOKEN
    if not (configured and hmac.compare_digest(raw.encode(), configured.encode())):
        user = user_for_token(raw_token=raw)
        if user is None:
            return _denied("unauthorized", "Invalid or expired token.")
        if not user.is_staff:
            return _denied("forbidden", "Metrics are for staff.")
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


# --- a worker's own endpoint -------------------------------------------------------------------


class _WorkerMetricsHandler(BaseHTTPRequestHandler):
    """`GET /metrics` of a worker process, for `Authorization: Bearer <METRICS_TOKEN>`."""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found\n", "text/plain")
            return
        raw = bearer_token_from_header(self.headers.get("Authorization"))
        configured = settings.METRICS_TOKEN
        if raw is None or not hmac.compare_digest(raw.encode(), configured.encode()):
            self._answer(401, b"send METRICS_TOKEN as 'Authorization: Bearer'\n", "text/plain")
            return
        self._answer(200, exposition(), CONTENT_TYPE_LATEST)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="metrics"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per scrape would drown the worker's log


def worker_metrics_serve(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer | None:  # noqa: S104
    """Serve this process's metrics (`exposition()`) on `port` in a daemon thread, for
    deployments where processes share no PROMETHEUS_MULTIPROC_DIR (a container per worker):
    Prometheus scrapes each worker. Needs METRICS_TOKEN; None (logged) without it."""
    if not settings.METRICS_TOKEN:
        logger.error("WORKER_METRICS_PORT is set but METRICS_TOKEN is not: metrics not served")
        return None
    server = ThreadingHTTPServer((host, port), _WorkerMetricsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("serving this worker's metrics on port %d", port)
    return server
