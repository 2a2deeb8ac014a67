from decimal import Decimal

from django.db import migrations


def seed_default_model(apps, schema_editor):
    LanguageModel = apps.get_model("inference", "LanguageModel")
    if LanguageModel.objects.filter(name="smollm2-135m").exists():
        return
    LanguageModel.objects.create(
        name="smollm2-135m",
        display_name="SmolLM2 135M Instruct",
        description="A small instruct model that runs on a CPU; good for trying the platform.",
        weights="smollm2-135m-instruct",
        context_length=8192,
        default_temperature=0.7,
        default_top_p=0.95,
        default_max_tokens=512,
        max_output_tokens=2048,
        price_prompt_per_1k=Decimal("0.0001"),
        price_completion_per_1k=Decimal("0.0002"),
        queue="inference.smollm2-135m",
        enabled=True,
        is_default=not LanguageModel.objects.filter(is_default=True).exists(),
    )


def unseed_default_model(apps, schema_editor):
    apps.get_model("inference", "LanguageModel").objects.filter(name="smollm2-135m").delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0001_initial")]

    operations = [migrations.RunPython(seed_default_model, unseed_default_model)]
