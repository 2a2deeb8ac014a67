"""Serve the built browser app: `frontend/dist/index.html` at `/` and on every client route.

The assets themselves are served by whitenoise under STATIC_URL (Vite builds with
`base: "/static/"`). The page sets the CSRF cookie so the app's first write already has it.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

MISSING_BUILD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Build the browser app</title></head>
<body>
<h1>The browser app is not built yet</h1>
<p>Build it once, then reload this page:</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>The API (<code>/api/</code>) and the websocket (<code>/ws/chat/</code>) work without it.</p>
</body></html>
"""


def _index_path() -> Path:
    return Path(settings.FRONTEND_DIST_DIR) / "index.html"


@require_safe
@ensure_csrf_cookie
def app_shell(request: HttpRequest, path: str = "") -> HttpResponse:
    """The single-page app's HTML. Routing happens in the browser, so `path` is not used."""
    index = _index_path()
    try:
        html = index.read_text(encoding="utf-8")
    except FileNotFoundError:
        return HttpResponse(MISSING_BUILD_PAGE, status=503, content_type="text/html; charset=utf-8")
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    # The HTML names hashed asset files: it must be revalidated after each deploy.
    response["Cache-Control"] = "no-cache"
    return response
