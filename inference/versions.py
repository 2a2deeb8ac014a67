"""Model versions: their state changes (draft, canary, active, retired), rollback, the weights'
checksum, and which version a worker runs a generation on. Every state change goes through
one of the services below, in one transaction that locks the model's versions, so that the
database's constraints (one active and one canary per model, a share only on a canary) hold
between any two requests. docs/models.md describes the life of a version.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, F, FloatField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Cast, NullIf
from django.utils import timezone

from inference import engine as engine_module
from inference.engine import EngineSpec
from inference.models import LanguageModel, ModelVersion, UsageRecord

logger = logging.getLogger(__name__)

State = ModelVersion.State
SERVING_STATES = (State.ACTIVE, State.CANARY)
# What the model row mirrors of its active version (what the rest of the code reads).
MIRRORED_FIELDS = (
    "weights",
    "tokenizer",
    "context_length",
    "default_temperature",
    "default_top_p",
    "default_min_p",
    "default_max_tokens",
)
DIGEST_BLOCK_BYTES = 1 << 20


class VersionError(ValueError):
    """A state change that is not allowed; the message says why, for the admin to show."""


# --- state changes ------------------------------------------------------------------------------


def _locked(model_id: int) -> dict[int, ModelVersion]:
    """The model's versions, locked for this transaction (every state change takes them in
    the same order, so two changes of one model wait for each other, never deadlock)."""
    rows = ModelVersion.objects.select_for_update().filter(model_id=model_id).order_by("pk")
    return {row.pk: row for row in rows}


def _mirror(version: ModelVersion) -> None:
    """Copy the active version's configuration onto its model row."""
    LanguageModel.objects.filter(pk=version.model_id).update(
        **{name: getattr(version, name) for name in MIRRORED_FIELDS}, updated_at=timezone.now()
    )


def _save(version: ModelVersion, *fields: str) -> None:
    version.save(update_fields=[*fields, "updated_at"])


def version_canary_start(*, version: ModelVersion, share: int) -> ModelVersion:
    """Make a draft (or a retired version) the model's canary on `share` percent (1-100) of
    new conversations, or change a canary's share. Refused while another version is canary."""
    if isinstance(share, bool) or not isinstance(share, int) or not 1 <= share <= 100:
        raise VersionError("A canary's share is a whole percentage from 1 to 100.")
    with transaction.atomic():
        versions = _locked(version.model_id)
        current = versions[version.pk]
        if current.state == State.ACTIVE:
            raise VersionError(f"{current} is active: it already answers everyone else.")
        other = next(
            (v for v in versions.values() if v.state == State.CANARY and v.pk != current.pk), None
        )
        if other is not None:
            raise VersionError(f"{other} is the canary: stop or promote it first.")
        current.state, current.canary_share, current.retired_at = State.CANARY, share, None
        _save(current, "state", "canary_share", "retired_at")
    return current


def version_canary_stop(*, version: ModelVersion) -> ModelVersion:
    """Take a canary off traffic: back to draft, share cleared. Its running answers finish."""
    with transaction.atomic():
        current = _locked(version.model_id)[version.pk]
        if current.state != State.CANARY:
            raise VersionError(f"{current} is not a canary.")
        current.state, current.canary_share = State.DRAFT, 0
        _save(current, "state", "canary_share")
    return current


def version_promote(*, version: ModelVersion) -> ModelVersion:
    """Make `version` (a draft, the canary or a retired version) the active one. The version
    active until now is retired and remembered as `previous`, for a rollback."""
    with transaction.atomic():
        versions = _locked(version.model_id)
        current = versions[version.pk]
        if current.state == State.ACTIVE:
            raise VersionError(f"{current} is already active.")
        now = timezone.now()
        active = next((v for v in versions.values() if v.state == State.ACTIVE), None)
        if active is not None:
            active.state, active.retired_at = State.RETIRED, now
            _save(active, "state", "retired_at")  # before: one active per model
        current.state, current.canary_share = State.ACTIVE, 0
        current.previous, current.activated_at, current.retired_at = active, now, None
        _save(current, "state", "canary_share", "previous", "activated_at", "retired_at")
        _mirror(current)
    return current


def version_retire(*, version: ModelVersion) -> ModelVersion:
    """Retire a draft or a canary. The active version is retired only by promoting another or
    by a rollback: a model always has one to answer with."""
    with transaction.atomic():
        current = _locked(version.model_id)[version.pk]
        if current.state == State.ACTIVE:
            raise VersionError(f"{current} is active: promote another version or roll back.")
        if current.state == State.RETIRED:
            return current
        current.state, current.canary_share, current.retired_at = (
            State.RETIRED,
            0,
            timezone.now(),
        )
        _save(current, "state", "canary_share", "retired_at")
    return current


@dataclass(frozen=True, slots=True)
class Rollback:
    restored: ModelVersion  # active again
    retired: ModelVersion  # was active
    canary_stopped: ModelVersion | None  # the canary sent back to draft, if there was one


def version_rollback(*, model: LanguageModel) -> Rollback:
    """The one-step rollback: the version that was active before the current one is active
    again, the current one is retired, and a canary goes back to draft (share cleared)."""
    with transaction.atomic():
        versions = _locked(model.pk)
        active = next((v for v in versions.values() if v.state == State.ACTIVE), None)
        if active is None:
            raise VersionError(f"{model.name} has no active version to roll back.")
        previous = versions.get(active.previous_id) if active.previous_id else None
        if previous is None:
            raise VersionError(f"{active} has no previous version to roll back to.")
        now = timezone.now()
        canary = next((v for v in versions.values() if v.state == State.CANARY), None)
        if canary is not None and canary.pk != previous.pk:
            canary.state, canary.canary_share = State.DRAFT, 0
            _save(canary, "state", "canary_share")
        active.state, active.retired_at = State.RETIRED, now
        _save(active, "state", "retired_at")
        # The restored version keeps its own `previous`: a second rollback goes further back.
        previous.state, previous.canary_share = State.ACTIVE, 0
        previous.activated_at, previous.retired_at = now, None
        _save(previous, "state", "canary_share", "activated_at", "retired_at")
        _mirror(previous)
    logger.warning("rolled %s back from %s to %s", model.name, active.label, previous.label)
    return Rollback(restored=previous, retired=active, canary_stopped=canary)


# --- the weights' checksum ----------------------------------------------------------------------


def weights_digest(location: str | Path) -> str:
    """sha256 over a file, or over every file under a directory in order of relative path
    (each path, a NUL, then its bytes), so that a renamed, added or changed file shows."""
    root = Path(location)
    if root.is_file():
        files = [(root.name, root)]
    elif root.is_dir():
        found = (path for path in root.rglob("*") if path.is_file())
        files = sorted((path.relative_to(root).as_posix(), path) for path in found)
    else:
        raise VersionError(f"{location}: no such file or directory.")
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(DIGEST_BLOCK_BYTES):
                digest.update(block)
    return digest.hexdigest()


def version_checksum_record(*, version: ModelVersion) -> ModelVersion:
    """Compute the weights' checksum where they are now and store it on the version."""
    version.weights_sha256 = weights_digest(version.weights_location)
    _save(version, "weights_sha256")
    return version


def weights_check(version: ModelVersion) -> None:
    """Refuse weights whose checksum differs from the version's (when it has one)."""
    if not version.weights_sha256:
        return
    found = weights_digest(version.weights_location)
    if found != version.weights_sha256:
        raise VersionError(
            f"{version}: the weights at {version.weights_location} have sha256 {found}, "
            f"expected {version.weights_sha256}."
        )


# --- which version a worker runs ----------------------------------------------------------------

VERSION_CACHE_SECONDS = 5.0
_serving_cache: dict[int, tuple[float, dict[int, ModelVersion]]] = {}


def serving_versions(*, model_id: int, fresh: bool = False) -> dict[int, ModelVersion]:
    """The model's active and canary versions by id, re-read at most every 5 s (a promotion
    reaches the workers within that)."""
    now = time.monotonic()
    hit = _serving_cache.get(model_id)
    if hit is not None and hit[0] > now and not fresh:
        return hit[1]
    rows = ModelVersion.objects.filter(model_id=model_id, state__in=SERVING_STATES)
    found = {row.pk: row for row in rows.select_related("model")}
    _serving_cache[model_id] = (now + VERSION_CACHE_SECONDS, found)
    return found


def version_for_generation(*, model: LanguageModel, version_id: int | None) -> ModelVersion | None:
    """The version a queued generation runs on: the one admission chose while it still serves
    (active or canary); else, a version retired or stopped since, the model's active one.
    None: the model has no versions (its own row is the configuration), or is no registry
    row."""
    if model.pk is None:
        return None
    serving = serving_versions(model_id=model.pk)
    if version_id is not None and version_id not in serving:
        # Admission may have chosen a version this worker's cache does not know yet (a canary
        # started in the last seconds): read again before falling back to the active one.
        serving = serving_versions(model_id=model.pk, fresh=True)
    if version_id is not None and version_id in serving:
        return serving[version_id]
    return next((v for v in serving.values() if v.state == State.ACTIVE), None)


def configured(model: LanguageModel, version: ModelVersion | None) -> LanguageModel:
    """`model` as `version` configures it: a copy with the version's weights, tokenizer,
    context length and default sampling (the model's own row when there is no version)."""
    if version is None:
        return model
    copy = LanguageModel(**{f.attname: getattr(model, f.attname) for f in model._meta.fields})
    for name in MIRRORED_FIELDS:
        setattr(copy, name, getattr(version, name))
    return copy


@dataclass(frozen=True, slots=True)
class Served:
    """What a generation runs on: the model as its version configures it, and the engine."""

    model: LanguageModel
    version: ModelVersion | None
    spec: EngineSpec

    @property
    def chat_template(self) -> str | None:
        return (self.version.chat_template or None) if self.version is not None else None

    @property
    def version_id(self) -> int | None:
        return self.version.pk if self.version is not None else None

    @property
    def version_label(self) -> str:
        return self.version.label if self.version is not None else ""


def served(*, model: LanguageModel, version_id: int | None) -> Served:
    """The version (`version_for_generation`) and engine spec a generation of `model` runs on."""
    version = version_for_generation(model=model, version_id=version_id)
    return served_by(model, version)


def served_by(model: LanguageModel, version: ModelVersion | None) -> Served:
    used = configured(model, version)
    label = version.label if version is not None else ""
    return Served(used, version, EngineSpec.from_model(used, version=label))


def engine_of(serving: Served) -> Any:
    """The engine of `serving`, loaded on first use; the weights' checksum is checked before
    they are loaded."""
    version = serving.version
    if version is not None and version.weights_sha256 and serving.spec not in _checked:
        weights_check(version)
        _checked.add(serving.spec)
    return engine_module.host.engine_for(serving.spec)


# Engines whose weights matched their version's checksum in this process.
_checked: set[EngineSpec] = set()


# --- a worker follows its model's versions ------------------------------------------------------


def serving_now(model: LanguageModel) -> list[Served]:
    """What `model` serves now, read fresh: its active and canary versions (the model's own
    row when it has no versions)."""
    rows = sorted(serving_versions(model_id=model.pk, fresh=True).values(), key=_active_first)
    return [served_by(model, row) for row in rows] or [served_by(model, None)]


def _active_first(version: ModelVersion) -> tuple[bool, int]:
    return (version.state != State.ACTIVE, version.pk)


def engines_sync(model: LanguageModel, *, drain_timeout: float) -> list[EngineSpec]:
    """Load the engines of the versions `model` serves that are not loaded yet (the active one
    first), then drain and unload the engines of versions that no longer serve: each waits
    for its running generations to finish. The engines unloaded are returned."""
    wanted = serving_now(model)
    for serving in wanted:
        engine_of(serving)
    keep = {serving.spec for serving in wanted}
    host = engine_module.host
    dropped = []
    for spec in host.specs:
        stale = spec.name == model.name and spec not in keep
        if stale and host.drain_and_unload(spec, timeout=drain_timeout):
            dropped.append(spec)
    return dropped


class VersionWatcher:
    """A worker's thread that follows its model's versions (`engines_sync`) every
    INFERENCE_VERSION_POLL_SECONDS, so that a promotion, a canary or a rollback in the admin
    reaches the worker without a restart of anything."""

    def __init__(self, *, model_name: str, interval: float | None = None) -> None:
        self.model_name = model_name
        self.interval = interval or float(settings.INFERENCE_VERSION_POLL_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-versions", daemon=True)

    def sync_once(self) -> list[EngineSpec]:
        try:
            model = LanguageModel.objects.filter(name=self.model_name, enabled=True).first()
            if model is None:
                return []
            return engines_sync(
                model, drain_timeout=float(settings.INFERENCE_TASK_TIME_LIMIT_SECONDS)
            )
        finally:
            connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_once()
            except Exception:  # the next round tries again; tasks load what they need anyway
                logger.exception("could not follow the versions of %s", self.model_name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


# --- per-version statistics ---------------------------------------------------------------------

STATS_DAYS = 30  # the window the admin's figures cover


def feedback_mirror(*, generation_id: str, owner_id: int, rating: int, **_: Any) -> None:
    """Copy a user's rating of an answer onto its bill (the owner's own record only). The
    rating is stored with the message already: a failure here is logged, never the user's."""
    try:
        UsageRecord.objects.filter(generation_id=generation_id, user_id=owner_id).update(
            feedback_rating=rating
        )
    except Exception:
        logger.warning(
            "could not copy the rating of %s onto its bill", generation_id, exc_info=True
        )


def _per_version(since: Any, value: Any) -> Subquery:
    """One figure of the version's usage records since `since` (the records' version index)."""
    records = UsageRecord.objects.filter(model_version_id=OuterRef("pk"), created_at__gte=since)
    return Subquery(
        records.order_by().values("model_version_id").annotate(value=value).values("value")[:1]
    )


def versions_with_stats(queryset: QuerySet[ModelVersion], *, since: Any) -> QuerySet[ModelVersion]:
    """`queryset` annotated with each version's figures over its answers since `since`:
    `stat_answers`; `stat_ttft_ms` (mean time to first token); `stat_tokens_per_s` (tokens
    after the first over the time after it, per answer of two or more tokens, summed);
    `stat_moderated` (share of answers output moderation cut); `stat_ratings` and
    `stat_thumbs_up` (share of rated answers rated up). Computed in PostgreSQL, per row of
    the page, each over one version's window of records."""
    decoding = Q(time_to_first_token_ms__isnull=False, completion_tokens__gt=1)
    tokens = Sum(F("completion_tokens") - 1, filter=decoding)
    seconds = Sum(F("duration_ms") - F("time_to_first_token_ms"), filter=decoding)
    rated = Q(feedback_rating__isnull=False)
    return queryset.annotate(
        stat_answers=_per_version(since, Count("id")),
        stat_ttft_ms=_per_version(since, Avg("time_to_first_token_ms")),
        stat_tokens_per_s=_per_version(
            since, Cast(tokens, FloatField()) * 1000.0 / NullIf(seconds, 0)
        ),
        stat_moderated=_per_version(
            since,
            Cast(Count("id", filter=Q(finish_reason="moderated")), FloatField())
            / NullIf(Count("id"), 0),
        ),
        stat_ratings=_per_version(since, Count("id", filter=rated)),
        stat_thumbs_up=_per_version(
            since,
            Cast(Count("id", filter=Q(feedback_rating=1)), FloatField())
            / NullIf(Count("id", filter=rated), 0),
        ),
    )
