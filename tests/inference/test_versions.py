"""Model versions in PostgreSQL: the first active version the migration made, the state
changes and their constraints, rollback, and the weights' checksum."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from inference import versions
from inference.models import LanguageModel, ModelVersion
from inference.versions import VersionError

pytestmark = pytest.mark.django_db

State = ModelVersion.State


@pytest.fixture
def model() -> LanguageModel:
    return LanguageModel.objects.get(name="smollm2-135m")


def draft(model: LanguageModel, label: str, **fields: object) -> ModelVersion:
    fields.setdefault("weights", f"/models/{label}")
    return ModelVersion.objects.create(model=model, label=label, **fields)


def states(model: LanguageModel) -> dict[str, tuple[str, int]]:
    return {v.label: (v.state, v.canary_share) for v in model.versions.all()}


def test_the_migration_made_each_models_configuration_its_first_active_version() -> None:
    for model in LanguageModel.objects.all():
        (version,) = model.versions.all()
        assert (version.label, version.state, version.canary_share) == ("v1", "active", 0)
        assert version.weights == model.weights
        assert version.context_length == model.context_length
        assert (version.default_temperature, version.default_min_p) == (
            model.default_temperature,
            model.default_min_p,
        )
        assert version.activated_at is not None


def test_canary_then_promote_then_rollback(model: LanguageModel) -> None:
    v2 = draft(model, "v2", context_length=4096, default_temperature=0.3)

    versions.version_canary_start(version=v2, share=10)
    assert states(model) == {"v1": ("active", 0), "v2": ("canary", 10)}
    versions.version_canary_start(version=v2, share=25)  # a new share
    assert states(model)["v2"] == ("canary", 25)

    versions.version_promote(version=v2)
    assert states(model) == {"v1": ("retired", 0), "v2": ("active", 0)}
    model.refresh_from_db()
    # The model row mirrors its active version's configuration.
    assert (model.weights, model.context_length, model.default_temperature) == (
        "/models/v2",
        4096,
        0.3,
    )

    v3 = draft(model, "v3")
    versions.version_canary_start(version=v3, share=50)
    done = versions.version_rollback(model=model)

    assert (done.restored.label, done.retired.label) == ("v1", "v2")
    assert done.canary_stopped is not None and done.canary_stopped.label == "v3"
    assert states(model) == {"v1": ("active", 0), "v2": ("retired", 0), "v3": ("draft", 0)}
    model.refresh_from_db()
    assert (model.weights, model.context_length) == ("smollm2-135m-instruct", 8192)


def test_rollback_needs_a_previous_version(model: LanguageModel) -> None:
    with pytest.raises(VersionError, match="no previous version"):
        versions.version_rollback(model=model)
    assert states(model) == {"v1": ("active", 0)}


def test_a_second_rollback_goes_further_back(model: LanguageModel) -> None:
    versions.version_promote(version=draft(model, "v2"))
    versions.version_promote(version=draft(model, "v3"))

    versions.version_rollback(model=model)
    assert {v.label for v in model.versions.filter(state=State.ACTIVE)} == {"v2"}
    versions.version_rollback(model=model)
    assert {v.label for v in model.versions.filter(state=State.ACTIVE)} == {"v1"}
    with pytest.raises(VersionError):
        versions.version_rollback(model=model)


def test_refused_changes_say_why_and_change_nothing(model: LanguageModel) -> None:
    v1 = model.versions.get(label="v1")
    v2, v3 = draft(model, "v2"), draft(model, "v3")
    versions.version_canary_start(version=v2, share=5)

    with pytest.raises(VersionError, match="is the canary"):
        versions.version_canary_start(version=v3, share=5)
    for share in (0, 101, -1, True, 2.5):
        with pytest.raises(VersionError, match="1 to 100"):
            versions.version_canary_start(version=v3, share=share)  # type: ignore[arg-type]
    with pytest.raises(VersionError, match="already active"):
        versions.version_promote(version=v1)
    with pytest.raises(VersionError, match="is active"):
        versions.version_retire(version=v1)
    with pytest.raises(VersionError, match="not a canary"):
        versions.version_canary_stop(version=v3)

    assert states(model) == {"v1": ("active", 0), "v2": ("canary", 5), "v3": ("draft", 0)}
    versions.version_canary_stop(version=v2)
    versions.version_retire(version=v3)
    assert states(model) == {"v1": ("active", 0), "v2": ("draft", 0), "v3": ("retired", 0)}


def test_the_database_holds_one_active_one_canary_and_shares_only_on_a_canary(
    model: LanguageModel,
) -> None:
    for fields in (
        {"state": "active"},
        {"state": "draft", "canary_share": 10},
        {"state": "canary", "canary_share": 0},
        {"state": "canary", "canary_share": 101},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            draft(model, "bad", **fields)
    draft(model, "c1", state="canary", canary_share=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        draft(model, "c2", state="canary", canary_share=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        draft(model, "c1")  # a label is unique per model


def test_the_weights_checksum_covers_names_and_bytes(tmp_path: Path, model: LanguageModel) -> None:
    weights = tmp_path / "w"
    (weights / "sub").mkdir(parents=True)
    (weights / "a.bin").write_bytes(b"abc")
    (weights / "sub" / "b.json").write_text("{}")
    first = versions.weights_digest(weights)

    assert len(first) == 64 and versions.weights_digest(weights) == first
    version = draft(model, "v2", weights=str(weights))
    versions.version_checksum_record(version=version)
    versions.weights_check(version)  # as recorded: fine

    (weights / "a.bin").write_bytes(b"abd")
    assert versions.weights_digest(weights) != first
    with pytest.raises(VersionError, match="expected"):
        versions.weights_check(version)
    (weights / "a.bin").write_bytes(b"abc")
    (weights / "sub" / "b.json").rename(weights / "sub" / "c.json")
    assert versions.weights_digest(weights) != first
    with pytest.raises(VersionError, match="no such file"):
        versions.weights_digest(tmp_path / "missing")


def test_configured_applies_the_version_to_a_copy_of_the_model(model: LanguageModel) -> None:
    v2 = draft(model, "v2", context_length=2048, default_max_tokens=64, tokenizer="tok")

    used = versions.configured(model, v2)

    assert (used.context_length, used.default_max_tokens, used.tokenizer) == (2048, 64, "tok")
    assert (used.name, used.queue, used.pk) == (model.name, model.queue, model.pk)
    model.refresh_from_db()
    assert model.context_length == 8192
    assert versions.configured(model, None) is model


def test_a_queued_generation_keeps_a_serving_version_else_gets_the_active_one(
    model: LanguageModel,
) -> None:
    v1 = model.versions.get(label="v1")
    v2 = draft(model, "v2")
    versions.version_canary_start(version=v2, share=10)

    pick = versions.version_for_generation
    assert pick(model=model, version_id=v2.pk) is not None
    versions._serving_cache.clear()
    assert pick(model=model, version_id=v2.pk).pk == v2.pk  # type: ignore[union-attr]
    assert pick(model=model, version_id=None).pk == v1.pk  # type: ignore[union-attr]
    versions.version_canary_stop(version=v2)
    versions._serving_cache.clear()
    assert pick(model=model, version_id=v2.pk).pk == v1.pk  # type: ignore[union-attr]
    bare = LanguageModel.objects.create(name="bare", display_name="Bare", weights="/m")
    assert pick(model=bare, version_id=None) is None


def test_a_version_started_after_the_workers_last_read_is_read_again_not_replaced(
    model: LanguageModel,
) -> None:
    v1 = model.versions.get(label="v1")
    versions._serving_cache.clear()
    assert set(versions.serving_versions(model_id=model.pk)) == {v1.pk}  # cached: v1 alone
    v2 = draft(model, "v2")
    versions.version_canary_start(version=v2, share=100)  # admission now draws v2

    chosen = versions.version_for_generation(model=model, version_id=v2.pk)

    assert chosen is not None and chosen.pk == v2.pk  # not the active one from a stale cache


def test_the_ending_names_its_version_in_generation_done_and_the_bill(
    model: LanguageModel,
) -> None:
    from chat.generation.record import Ending
    from inference.models import UsageRecord
    from inference.services import usage_record_create

    v1 = model.versions.get(label="v1")
    ending = Ending.from_document(
        {
            "generation_id": "g-version",
            "owner_id": 1,
            "state": "complete",
            "content": "Hi",
            "model": model.name,
            "model_version_id": v1.pk,
            "model_version": "v1",
        }
    )
    done = ending.closing_message().model_dump(mode="json")
    assert done["model_version"] == "v1"
    legacy = Ending.from_document(
        {"generation_id": "g-old", "owner_id": 1, "state": "complete", "content": "Hi"}
    )
    assert legacy.closing_message().model_dump(mode="json")["model_version"] is None

    usage_record_create(
        generation_id="g-version",
        user_id=None,
        model_name=model.name,
        prompt_tokens=3,
        completion_tokens=4,
        finish_reason="stop",
        time_to_first_token_ms=10,
        duration_ms=100,
        model_version_id=v1.pk,
        model_version="v1",
    )
    record = UsageRecord.objects.get(generation_id="g-version")
    assert (record.model_version_id, record.model_version) == (v1.pk, "v1")


def _bill(version: ModelVersion | None, number: int, **fields: object) -> None:
    from inference.models import UsageRecord

    values: dict[str, object] = {
        "generation_id": f"g-{version.label if version else 'none'}-{number}",
        "model": "smollm2-135m",
        "model_version_id": version.pk if version else None,
        "model_version": version.label if version else "",
        "prompt_tokens": 10,
        "completion_tokens": 11,
        "time_to_first_token_ms": 100,
        "duration_ms": 1100,
        "finish_reason": "stop",
    }
    values.update(fields)
    UsageRecord.objects.create(**values)


def test_per_version_statistics_are_computed_in_postgresql(model: LanguageModel) -> None:
    from datetime import timedelta

    from django.utils import timezone

    v1 = model.versions.get(label="v1")
    v2 = draft(model, "v2")
    # v1: 4 answers, TTFT 100 ms, 10 tokens after the first in 1 s; one moderated; 2 up, 1 down.
    _bill(v1, 1, feedback_rating=1)
    _bill(v1, 2, feedback_rating=1)
    _bill(v1, 3, feedback_rating=-1, finish_reason="moderated")
    _bill(v1, 4)
    # v2: 2 answers, TTFT 300 ms, 10 tokens in 0.5 s, one 1-token answer (no decoding rate).
    _bill(v2, 1, time_to_first_token_ms=300, duration_ms=800, feedback_rating=-1)
    _bill(v2, 2, time_to_first_token_ms=300, completion_tokens=1, duration_ms=300)
    # Outside the window, and of no version: not counted.
    _bill(v2, 3, time_to_first_token_ms=9000, created_at=timezone.now() - timedelta(days=40))
    _bill(None, 1)

    since = timezone.now() - timedelta(days=30)
    rows = {v.label: v for v in versions.versions_with_stats(model.versions.all(), since=since)}

    one, two = rows["v1"], rows["v2"]
    assert (one.stat_answers, one.stat_ttft_ms) == (4, 100)  # type: ignore[attr-defined]
    assert one.stat_tokens_per_s == pytest.approx(10.0)  # type: ignore[attr-defined]
    assert one.stat_moderated == pytest.approx(0.25)  # type: ignore[attr-defined]
    assert (one.stat_ratings, one.stat_thumbs_up) == (3, pytest.approx(2 / 3))  # type: ignore[attr-defined]
    assert (two.stat_answers, two.stat_ttft_ms) == (2, 300)  # type: ignore[attr-defined]
    assert two.stat_tokens_per_s == pytest.approx(20.0)  # type: ignore[attr-defined]
    assert two.stat_moderated == 0  # type: ignore[attr-defined]
    assert (two.stat_ratings, two.stat_thumbs_up) == (1, 0)  # type: ignore[attr-defined]


def test_a_rating_reaches_the_owners_bill_only(model: LanguageModel) -> None:
    from accounts.models import User
    from chat.services import feedback_changed
    from inference.models import UsageRecord

    owner = User.objects.create_user(email="owner@example.org", password="x" * 12)
    v1 = model.versions.get(label="v1")
    _bill(v1, 1, user=owner)

    feedback_changed.send(sender="test", generation_id="g-v1-1", owner_id=owner.pk + 1, rating=1)
    assert UsageRecord.objects.get(generation_id="g-v1-1").feedback_rating is None
    feedback_changed.send(sender="test", generation_id="g-v1-1", owner_id=owner.pk, rating=-1)
    assert UsageRecord.objects.get(generation_id="g-v1-1").feedback_rating == -1
