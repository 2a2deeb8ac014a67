"""Min-p sampling per model, and the default CPU model moved from top-p to min-p.

vLLM's top-p sorts the whole vocabulary for every token. On the CPU engine that cost about 45%
of the throughput at 16 streams (160 against 290 tokens/s, SmolLM2-135M, 2 cores), while min-p
(0.05) cost nothing measurable; see docs/benchmarks.md. The seeded model is changed only if an
admin has not changed its top-p since the seed.
"""

import django.core.validators
from django.db import migrations, models

SEEDED = "smollm2-135m"


def prefer_min_p(apps, schema_editor):
    LanguageModel = apps.get_model("inference", "LanguageModel")
    LanguageModel.objects.filter(name=SEEDED, default_top_p=0.95, default_min_p=0.0).update(
        default_top_p=1.0, default_min_p=0.05
    )


def back_to_top_p(apps, schema_editor):
    LanguageModel = apps.get_model("inference", "LanguageModel")
    LanguageModel.objects.filter(name=SEEDED, default_top_p=1.0, default_min_p=0.05).update(
        default_top_p=0.95, default_min_p=0.0
    )


class Migration(migrations.Migration):
    dependencies = [("inference", "0003_usage_record")]

    operations = [
        migrations.AddField(
            model_name="languagemodel",
            name="default_min_p",
            field=models.FloatField(
                default=0.0,
                help_text=(
                    "Min-p sampling: drop tokens less likely than this share of the likeliest "
                    "one; 0: off. Cheap on any hardware."
                ),
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="languagemodel",
            name="default_top_p",
            field=models.FloatField(
                default=0.95,
                help_text=(
                    "Nucleus sampling; 1: off. Below 1 the engine sorts the whole vocabulary for "
                    "every token: on a CPU that cost about 45% of the throughput at 16 streams "
                    "(docs/benchmarks.md). Prefer min-p there."
                ),
                validators=[
                    django.core.validators.MinValueValidator(0.01),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.RunPython(prefer_min_p, back_to_top_p),
    ]
