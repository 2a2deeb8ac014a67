"""Model versions from the command line, the same state changes as the admin's actions
(inference.versions; docs/models.md):

    manage.py model_version list   smollm2-135m
    manage.py model_version create smollm2-135m v2 --from v1 [--weights PATH] [--checksum]
    manage.py model_version canary smollm2-135m v2 --share 10
    manage.py model_version stop-canary smollm2-135m v2
    manage.py model_version promote smollm2-135m v2
    manage.py model_version retire smollm2-135m v2
    manage.py model_version rollback smollm2-135m

Workers follow within INFERENCE_VERSION_POLL_SECONDS; nothing restarts.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference import versions
from inference.models import LanguageModel, ModelVersion

ACTIONS = ("list", "create", "canary", "stop-canary", "promote", "retire", "rollback")


class Command(BaseCommand):
    help = "List, create and change the state of a model's versions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("model")
        parser.add_argument("label", nargs="?")
        parser.add_argument("--from", dest="source", help="create: copy this version's setup")
        parser.add_argument("--weights", help="create: the new version's weights")
        parser.add_argument(
            "--checksum", action="store_true", help="create: record the weights' sha256"
        )
        parser.add_argument("--share", type=int, help="canary: percent of conversations")

    def handle(self, *args: Any, **options: Any) -> None:
        model = LanguageModel.objects.filter(name=options["model"]).first()
        if model is None:
            raise CommandError(f"No model {options['model']!r}.")
        action, label = options["action"], options["label"]
        try:
            if action == "list":
                self._list(model)
            elif action == "rollback":
                done = versions.version_rollback(model=model)
                self.stdout.write(f"{done.restored} active, {done.retired} retired")
            else:
                if not label:
                    raise CommandError(f"{action} needs a version label.")
                self._change(action, model, label, options)
        except versions.VersionError as error:
            raise CommandError(str(error)) from None

    def _list(self, model: LanguageModel) -> None:
        for version in model.versions.order_by("created_at"):
            share = f" {version.canary_share}%" if version.state == "canary" else ""
            self.stdout.write(f"{version.label}\t{version.state}{share}\t{version.weights}")

    def _change(self, action: str, model: LanguageModel, label: str, options: Any) -> None:
        if action == "create":
            version = self._create(model, label, options)
        else:
            found = model.versions.filter(label=label).first()
            if found is None:
                raise CommandError(f"{model.name} has no version {label!r}.")
            version = found
            if action == "canary":
                if options["share"] is None:
                    raise CommandError("canary needs --share (1 to 100).")
                version = versions.version_canary_start(version=version, share=options["share"])
            elif action == "stop-canary":
                version = versions.version_canary_stop(version=version)
            elif action == "promote":
                version = versions.version_promote(version=version)
            elif action == "retire":
                version = versions.version_retire(version=version)
        share = f" ({version.canary_share}%)" if version.state == "canary" else ""
        self.stdout.write(f"{version}: {version.state}{share}")

    def _create(self, model: LanguageModel, label: str, options: Any) -> ModelVersion:
        source = (
            model.versions.filter(label=options["source"]).first() if options["source"] else None
        )
        if options["source"] and source is None:
            raise CommandError(f"{model.name} has no version {options['source']!r}.")
        if model.versions.filter(label=label).exists():
            raise CommandError(f"{model.name} already has a version {label!r}.")
        copied = {
            name: getattr(source or model, name)
            for name in (*versions.MIRRORED_FIELDS, "chat_template")
            if hasattr(source or model, name)
        }
        if options["weights"]:
            copied["weights"] = options["weights"]
        version = ModelVersion(model=model, label=label, **copied)
        version.full_clean()
        version.save()
        if options["checksum"]:
            versions.version_checksum_record(version=version)
        return version
