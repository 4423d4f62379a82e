"""Seed the model catalog with today's models of every provider Tokenboard reads, and the spellings each source
uses for them (provider exports, gateways, Cursor, Copilot, Bedrock usage types), then mark every day with usage
so the next refresh counts it under canonical names."""

from django.db import migrations
from django.utils import timezone

# (canonical name, family, vendor, spellings other than the name itself)
CATALOG = [
    (
        "Claude Sonnet 4.5",
        "Claude Sonnet",
        "Anthropic",
        [
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4.5",
            "claude-4.5-sonnet",
            "claude-4.5-sonnet-thinking",
            "anthropic.claude-sonnet-4-5",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude4.5sonnet",
        ],
    ),
    ("Claude Sonnet 4.6", "Claude Sonnet", "Anthropic", ["claude-sonnet-4-6", "claude4.6sonnet"]),
    (
        "Claude Sonnet 4",
        "Claude Sonnet",
        "Anthropic",
        ["claude-sonnet-4-0", "claude-sonnet-4-20250514", "claude-4-sonnet", "claude-4-sonnet-thinking", "claude4sonnet"],
    ),
    ("Claude Opus 4.1", "Claude Opus", "Anthropic", ["claude-opus-4-1", "claude-opus-4-1-20250805", "claude-4.1-opus"]),
    (
        "Claude Opus 4.5",
        "Claude Opus",
        "Anthropic",
        ["claude-opus-4-5", "claude-opus-4-5-20251101", "claude-4.5-opus", "claude-4.5-opus-high-thinking"],
    ),
    (
        "Claude Haiku 4.5",
        "Claude Haiku",
        "Anthropic",
        ["claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-4.5-haiku", "claude4.5haiku"],
    ),
    ("GPT-5", "GPT-5", "OpenAI", ["gpt-5-2025-08-07"]),
    ("GPT-5 mini", "GPT-5", "OpenAI", ["gpt-5-mini-2025-08-07"]),
    ("GPT-4.1", "GPT-4.1", "OpenAI", ["gpt-4.1-2025-04-14"]),
    ("GPT-4.1 mini", "GPT-4.1", "OpenAI", ["gpt-4.1-mini-2025-04-14"]),
    ("GPT-4o", "GPT-4o", "OpenAI", ["gpt-4o-2024-08-06", "gpt-4o-2024-05-13", "gpt-4o-0806", "gpt-4o-0513"]),
    ("GPT-4o mini", "GPT-4o", "OpenAI", ["gpt-4o-mini-2024-07-18"]),
    ("Gemini 2.5 Pro", "Gemini Pro", "Google", []),
    ("Gemini 2.5 Flash", "Gemini Flash", "Google", []),
    ("Nova 2 Lite", "Amazon Nova", "Amazon", ["nova2.0lite", "amazon.nova-2-lite-v1:0"]),
    ("Composer 1", "Cursor Composer", "Cursor", ["composer-1"]),
    ("Cursor Small", "Cursor Small", "Cursor", ["cursor-small"]),
]


def seed(apps, schema_editor):
    CatalogModel = apps.get_model("usage", "CatalogModel")
    ModelAlias = apps.get_model("usage", "ModelAlias")
    UsageRecord = apps.get_model("usage", "UsageRecord")
    StandingsDirtyDay = apps.get_model("usage", "StandingsDirtyDay")
    for name, family, vendor, spellings in CATALOG:
        model, _ = CatalogModel.objects.get_or_create(name=name, defaults={"family": family, "vendor": vendor})
        # Hyphenated ids ("gemini-2.5-pro", "gpt-4.1") are the name itself in lower case with dashes.
        for spelling in {name.lower(), name.lower().replace(" ", "-"), *spellings}:
            ModelAlias.objects.get_or_create(spelling=spelling.lower(), defaults={"model": model})
    now = timezone.now()
    StandingsDirtyDay.objects.bulk_create(
        [StandingsDirtyDay(day=day, marked_at=now) for day in UsageRecord.objects.values_list("day", flat=True).distinct()],
        ignore_conflicts=True,
    )


def unseed(apps, schema_editor):
    apps.get_model("usage", "ModelAlias").objects.all().delete()
    apps.get_model("usage", "CatalogModel").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("usage", "0009_model_catalog_identity_attribution")]

    operations = [migrations.RunPython(seed, unseed)]
