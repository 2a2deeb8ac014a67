"""Bills written before usage records carried their source: those of generations the API marked
(`ApiGeneration`) become `source="api"` with the key that asked for them. Everything else was
the websocket's, the new column's default."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def api_sources(apps, schema_editor):
    usage_record = apps.get_model("inference", "UsageRecord")
    api_generation = apps.get_model("api", "ApiGeneration")
    marks = api_generation.objects.filter(generation_id=OuterRef("generation_id"))
    usage_record.objects.filter(
        generation_id__in=api_generation.objects.values("generation_id")
    ).update(source="api", api_key_id=Subquery(marks.values("key_id")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_key_store_conversations"),
        ("inference", "0005_usage_source"),
    ]

    operations = [migrations.RunPython(api_sources, migrations.RunPython.noop)]
