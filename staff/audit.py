"""Recording staff actions in the audit log (`staff.models.AuditEntry`).

One writer, `audit_record`, for both doors: the staff API's services (`staff.services`) and
the admin (`staff.admin`). An object's state goes in as `snapshot(obj)`: its fields as JSON,
secrets replaced by a fingerprint that shows a change without holding the secret.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest

from accounts.throttle import client_ip
from staff.models import AuditEntry

# Fields whose values never enter the log: a password hash, a token's or key's hash.
SECRET_FIELDS = frozenset({"password", "key_hash", "key"})
# Many-to-many relations with more members than this are summarised by their count.
M2M_MAX_IDS = 200
REPR_MAX_CHARS = 200


def _fingerprint(value: Any) -> str | None:
    if value in (None, ""):
        return None
    digest = hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:12]
    return f"<hidden {digest}>"


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's stored fields as JSON: concrete fields (a foreign key as its id), and
    many-to-many relations as sorted ids. Secrets are fingerprints."""
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        value = field.value_from_object(obj)
        data[field.attname] = _fingerprint(value) if field.name in SECRET_FIELDS else value
    if obj.pk is not None:
        for m2m in obj._meta.many_to_many:
            ids = sorted(getattr(obj, m2m.name).values_list("pk", flat=True)[: M2M_MAX_IDS + 1])
            data[m2m.name] = ids if len(ids) <= M2M_MAX_IDS else {"count": len(ids)}
    safe: dict[str, Any] = _json_safe(data)
    return safe


def stored_snapshot(model: type[models.Model], pk: Any) -> dict[str, Any] | None:
    """The snapshot of the row as the database holds it now; None when there is none."""
    stored = model._default_manager.filter(pk=pk).first()
    return None if stored is None else snapshot(stored)


def _address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    address = client_ip(request.META)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:  # "unknown": no peer address (a test client, a unix socket)
        return None


def type_label(model: type[models.Model] | models.Model) -> str:
    return model._meta.label_lower


def audit_record(
    *,
    actor: Any,
    source: str,
    action: str,
    target_type: str,
    target_id: Any,
    target_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    message: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    """Append one entry. Call it inside the transaction of the change it records, so that
    the change and its entry are committed together or not at all."""
    return AuditEntry.objects.create(
        actor_id=getattr(actor, "pk", None),
        actor_email=getattr(actor, "email", "") or "",
        source=source,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_repr=str(target_repr)[:REPR_MAX_CHARS],
        before=None if before is None else _json_safe(before),
        after=None if after is None else _json_safe(after),
        message=message,
        ip=_address(request),
    )


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The names whose values differ between two snapshots (all of them for an add/delete)."""
    before, after = before or {}, after or {}
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
