"""Signals other apps listen to: accounts imports none of them (tests/test_import_rules.py)."""

from __future__ import annotations

import hashlib

from django.dispatch import Signal

# A credential stopped being valid before its time: a bearer token was revoked. Sent after the
# change is saved, with `user_id` and `credential` (`credential_id` of it). Whatever the
# credential authenticated (an open websocket) must stop now. Logging out a session is
# Django's `user_logged_out`; a password change or a suspension is a save of the user.
credential_revoked = Signal()


def credential_id(method: str, secret: str) -> str:
    """An opaque name for a credential that names it without holding it: `bearer:` and the
    token's stored hash, or `session:` and a hash of the session key."""
    return f"{method}:{hashlib.sha256(secret.encode('utf-8')).hexdigest()}"
