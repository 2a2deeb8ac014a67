from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from moderation import signals  # noqa: F401 - connects the version bump
        from moderation.policy import configured_actions

        # A typo in MODERATION_CATEGORY_ACTIONS stops the process at start, not a message.
        configured_actions()
