from __future__ import annotations

from django.contrib import admin

from inference.models import LanguageModel


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "display_name",
        "enabled",
        "is_default",
        "context_length",
        "max_output_tokens",
        "price_prompt_per_1k",
        "price_completion_per_1k",
        "queue",
        "updated_at",
    )
    list_filter = ("enabled", "is_default")
    list_editable = ("enabled",)
    search_fields = ("name", "display_name", "description")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "description", "enabled", "is_default")}),
        ("Loading", {"fields": ("weights", "tokenizer", "queue")}),
        (
            "Generation",
            {
                "fields": (
                    "context_length",
                    "default_temperature",
                    "default_top_p",
                    "default_max_tokens",
                    "max_output_tokens",
                )
            },
        ),
        ("Prices", {"fields": ("price_prompt_per_1k", "price_completion_per_1k")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
