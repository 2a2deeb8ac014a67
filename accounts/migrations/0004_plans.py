"""Plans (issue 18): the table, the seeded free, pro and team plans, every existing user on the
default plan, and a user's priority that is empty unless it overrides the plan's."""

import django.contrib.postgres.fields
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# `free` leaves every limit empty: the settings (CHAT_RATE_PER_MINUTE, CHAT_DAILY_MESSAGE_QUOTA,
# CHAT_MONTHLY_TOKEN_BUDGET, CHAT_MAX_CONCURRENT_GENERATIONS) decide, as they did before plans.
SEEDED = [
    {"name": "free", "description": "The default: the deployment's settings.", "priority": 5},
    {
        "name": "pro",
        "description": "More messages, a larger budget, sooner answers.",
        "messages_per_minute": 60,
        "daily_messages": 5000,
        "monthly_token_budget": 10_000_000,
        "concurrent_generations": 6,
        "priority": 7,
    },
    {
        "name": "team",
        "description": "For shared, heavy use.",
        "messages_per_minute": 120,
        "daily_messages": 20000,
        "monthly_token_budget": 50_000_000,
        "concurrent_generations": 12,
        "priority": 8,
    },
]
NORMAL_PRIORITY = 5


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for values in SEEDED:
        Plan.objects.get_or_create(name=values["name"], defaults=values)


def users_on_the_default_plan(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    User = apps.get_model("accounts", "User")
    default, _ = Plan.objects.get_or_create(name=settings.ACCOUNTS_DEFAULT_PLAN)
    User.objects.filter(plan__isnull=True).update(plan=default)
    # A normal priority was everyone's default: such users now follow their plan's (free: 5).
    User.objects.filter(priority=NORMAL_PRIORITY).update(priority=None)


def priorities_back(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.filter(priority__isnull=True).update(priority=NORMAL_PRIORITY)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_user_email_verified_at")]

    operations = [
        migrations.CreateModel(
            name="Plan",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.SlugField(max_length=64, unique=True)),
                ("description", models.CharField(blank=True, max_length=200)),
                (
                    "messages_per_minute",
                    models.PositiveIntegerField(
                        blank=True, help_text="0: no limit; empty: CHAT_RATE_PER_MINUTE.", null=True
                    ),
                ),
                (
                    "daily_messages",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="0: no quota; empty: CHAT_DAILY_MESSAGE_QUOTA.",
                        null=True,
                    ),
                ),
                (
                    "monthly_token_budget",
                    models.PositiveBigIntegerField(
                        blank=True,
                        help_text="Prompt and completion tokens per calendar month (UTC); 0: no "
                        "budget; empty: CHAT_MONTHLY_TOKEN_BUDGET.",
                        null=True,
                    ),
                ),
                (
                    "concurrent_generations",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Answers generated at once; empty: CHAT_MAX_CONCURRENT_GENERATIONS.",
                        null=True,
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                (
                    "max_output_tokens",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Upper clamp on an answer's tokens, below the model's own; "
                        "empty: the model's.",
                        null=True,
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                (
                    "allowed_models",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.SlugField(max_length=128),
                        blank=True,
                        default=list,
                        help_text="Model names (comma-separated); empty: every enabled model.",
                        size=None,
                    ),
                ),
                (
                    "priority",
                    models.PositiveSmallIntegerField(
                        default=5,
                        help_text="Scheduling priority, 0 (last) to 9 (first), for Celery and "
                        "vLLM; a user's own priority overrides it.",
                        validators=[django.core.validators.MaxValueValidator(9)],
                    ),
                ),
            ],
            options={"ordering": ("priority", "name")},
        ),
        migrations.RunPython(seed_plans, migrations.RunPython.noop),
        migrations.AddField(
            model_name="user",
            name="plan",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="users",
                to="accounts.plan",
            ),
        ),
        migrations.AlterField(
            model_name="user",
            name="priority",
            field=models.PositiveSmallIntegerField(
                blank=True, choices=[(0, "low"), (5, "normal"), (9, "high")], null=True
            ),
        ),
        migrations.RunPython(users_on_the_default_plan, priorities_back),
    ]
