"""The Content-Security-Policy of every response (django-csp), with the websocket's origin.

The policy itself is `CONTENT_SECURITY_POLICY` in settings: scripts, styles and fonts from this
origin only (no inline scripts), images from this origin or `data:`, connections to this origin
and its websocket. It is the second line behind the Markdown sanitiser (frontend/src/markdown):
even markup that slipped through cannot load a remote image or script, nor send data anywhere.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


def websocket_origin(request: HttpRequest) -> str | None:
    """`wss://host[:port]` (`ws://` over plain HTTP) of this request, or None for a host that
    is not in ALLOWED_HOSTS (that request is refused anyway)."""
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, adding this request's websocket origin to `connect-src`.

    CSP Level 3 lets 'self' match the page's own ws:/wss: origin, but not every browser a
    person may use does; naming the origin costs nothing.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        origin = websocket_origin(request)
        if origin is not None and not report_only:
            parts.update = {**(parts.update or {}), "connect-src": [origin]}
        return parts
