"""Open websockets learn at once when the credential behind them stops being valid
(PROTOCOL: the server closes them with 4401). Connected in `ChatConfig.ready`.

- a logout: Django's `user_logged_out` names the session that ends;
- a revoked bearer token: `accounts.signals.credential_revoked`;
- a password change or a suspension: a save of the user that changes `password` or
  `is_active`; every connection of the user authenticates its credential again (a session
  carries a hash of the password, a token does not: a token survives a password change).

Each publishes once, after the change is committed; a lost event is caught by the
connection's own periodic check (chat.consumers, CHAT_CREDENTIALS_RECHECK_SECONDS).

A save or a deletion of a model or a version drops this process's snapshot of the registry
(`chat.catalog`).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from pydantic import BaseModel

from accounts.models import User
from accounts.signals import credential_id, credential_revoked
from chat import catalog, events

logger = logging.getLogger(__name__)
CREDENTIAL_FIELDS = ("password", "is_active")


def _tell(user_id: int, event: BaseModel) -> None:
    try:
        events.to_user_sync(user_id, event)
    except Exception as error:  # never fail the logout or the save for it
        logger.warning("could not tell user %s's connections: %r", user_id, error)


def on_credential_revoked(sender: Any, *, user_id: int, credential: str, **_: Any) -> None:
    _tell(user_id, events.CredentialRevoked(credential=credential))


def on_logged_out(sender: Any, *, request: Any, user: Any, **_: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        credential = credential_id("session", session_key)
        _tell(user.pk, events.CredentialRevoked(credential=credential))


def before_user_saved(sender: Any, *, instance: User, update_fields: Any = None, **_: Any) -> None:
    instance._credentials_changed = False  # type: ignore[attr-defined]
    if instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(CREDENTIAL_FIELDS):
        return  # a last_login update on every login, for one
    stored = User.objects.filter(pk=instance.pk).values(*CREDENTIAL_FIELDS).first()
    instance._credentials_changed = stored is not None and any(  # type: ignore[attr-defined]
        stored[name] != getattr(instance, name) for name in CREDENTIAL_FIELDS
    )


def after_user_saved(sender: Any, *, instance: User, **_: Any) -> None:
    if getattr(instance, "_credentials_changed", False):
        user_id = instance.pk
        transaction.on_commit(lambda: _tell(user_id, events.CredentialsChanged()))


def connect() -> None:
    credential_revoked.connect(on_credential_revoked, dispatch_uid="chat.credential_revoked")
    user_logged_out.connect(on_logged_out, dispatch_uid="chat.user_logged_out")
    pre_save.connect(before_user_saved, sender=User, dispatch_uid="chat.before_user_saved")
    post_save.connect(after_user_saved, sender=User, dispatch_uid="chat.after_user_saved")


# --- the model catalog ---------------------------------------------------------------------------

# The registry rows that `chat.catalog` keeps a snapshot of, by label (chat never imports
# inference).
CATALOG_MODELS = ("inference.LanguageModel", "inference.ModelVersion")


def on_catalog_changed(sender: Any, **_: Any) -> None:
    """A model or a version was saved or deleted in this process: drop the snapshot now, and
    again once the change is committed (a reader in between may have read the old rows)."""
    catalog.forget()
    transaction.on_commit(catalog.forget)


def catalog_connect() -> None:
    for label in CATALOG_MODELS:
        for signal, kind in ((post_save, "saved"), (post_delete, "deleted")):
            signal.connect(
                on_catalog_changed, sender=label, dispatch_uid=f"chat.catalog.{label}.{kind}"
            )
