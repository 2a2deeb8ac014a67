from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat.services import feedback_changed
        from inference.versions import feedback_mirror

        feedback_changed.connect(feedback_mirror, dispatch_uid="inference.feedback_mirror")
