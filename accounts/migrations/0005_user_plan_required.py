"""Every user has a plan. A migration of its own: PostgreSQL refuses to alter a table in the
transaction that updated its foreign keys (pending trigger events)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_plans")]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="plan",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="users",
                to="accounts.plan",
            ),
        ),
    ]
