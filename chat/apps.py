from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.plans import plan_left_reader_register
        from chat import signals, usage

        signals.connect()
        signals.catalog_connect()
        plan_left_reader_register(usage.plan_left)
