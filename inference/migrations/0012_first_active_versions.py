"""Each registered model's current configuration becomes its first version, `v1`, active.

From here on the version is what a worker loads (weights, tokenizer, chat template, context
length, default sampling); the model row keeps its name, queue, prices and limits, and mirrors
its active version's configuration (inference.versions). See docs/models.md.
"""

from django.db import migrations
from django.utils import timezone


def first_versions(apps, schema_editor):
    LanguageModel = apps.get_model("inference", "LanguageModel")
    ModelVersion = apps.get_model("inference", "ModelVersion")
    now = timezone.now()
    for model in LanguageModel.objects.all():
        if ModelVersion.objects.filter(model=model).exists():
            continue
        ModelVersion.objects.create(
            model=model,
            label="v1",
            notes="The model's configuration when versions were introduced.",
            weights=model.weights,
            tokenizer=model.tokenizer,
            chat_template="",
            context_length=model.context_length,
            default_temperature=model.default_temperature,
            default_top_p=model.default_top_p,
            default_min_p=model.default_min_p,
            default_max_tokens=model.default_max_tokens,
            state="active",
            activated_at=now,
        )


def no_versions(apps, schema_editor):
    apps.get_model("inference", "ModelVersion").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0011_model_versions")]

    operations = [migrations.RunPython(first_versions, no_versions)]
