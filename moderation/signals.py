"""Every saved or deleted rule, allowlist entry, check setting or category policy bumps the
rules version once its transaction commits, however the edit was made (admin, service, shell)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from moderation.models import AllowlistEntry, CategoryPolicy, CheckSetting, ModerationRule
from moderation.state import version_bump_on_commit


@receiver(post_save, sender=ModerationRule)
@receiver(post_delete, sender=ModerationRule)
@receiver(post_save, sender=AllowlistEntry)
@receiver(post_delete, sender=AllowlistEntry)
@receiver(post_save, sender=CheckSetting)
@receiver(post_delete, sender=CheckSetting)
@receiver(post_save, sender=CategoryPolicy)
@receiver(post_delete, sender=CategoryPolicy)
def rules_changed(sender: type, **kwargs: Any) -> None:
    version_bump_on_commit()
