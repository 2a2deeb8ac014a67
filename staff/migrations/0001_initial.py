"""The audit log, append-only in the database itself: a trigger refuses every UPDATE and
DELETE of its rows, whoever asks (the admin, a shell, a bug). TRUNCATE (a test database's
flush) is a statement of its own and is not refused."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("actor_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
                ("actor_email", models.CharField(blank=True, max_length=254)),
                (
                    "source",
                    models.CharField(
                        choices=[("api", "staff API"), ("admin", "admin")], max_length=8
                    ),
                ),
                ("action", models.CharField(max_length=100)),
                ("target_type", models.CharField(max_length=100)),
                ("target_id", models.CharField(max_length=64)),
                ("target_repr", models.CharField(blank=True, max_length=200)),
                ("before", models.JSONField(blank=True, null=True)),
                ("after", models.JSONField(blank=True, null=True)),
                ("message", models.TextField(blank=True)),
                ("ip", models.GenericIPAddressField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit log",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["target_type", "target_id"], name="staff_audit_target")
                ],
            },
        ),
        migrations.RunSQL(
            sql="""
            CREATE FUNCTION staff_audit_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER staff_audit_append_only
                BEFORE UPDATE OR DELETE ON staff_auditentry
                FOR EACH ROW EXECUTE FUNCTION staff_audit_append_only();
            """,
            reverse_sql="""
            DROP TRIGGER IF EXISTS staff_audit_append_only ON staff_auditentry;
            DROP FUNCTION IF EXISTS staff_audit_append_only();
            """,
        ),
    ]
