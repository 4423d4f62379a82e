"""Public list prices (USD per million tokens) for common models, so usage without a billed cost gets an
estimate out of the box. Admins edit or add prices in the admin; a newer `effective_from` row takes over from
that day. Patterns are fnmatch patterns on the model name as the export writes it (case-insensitive); where two
match, the price book tries the lexicographically larger pattern first, so "gpt-4o-mini*" wins over "gpt-4o*".

Sources: the vendors' public pricing pages (OpenAI API pricing, Anthropic "Pricing", Google "Gemini API /
Vertex AI generative AI pricing"), standard tier, ≤ 200K-token context. Cache write: Anthropic's 5-minute cache
write (1.25 × input; 1-hour writes cost 2 × input and are estimated low); OpenAI and Gemini charge no cache-write
premium, so it is the input price. Effective from 2024-01-01 so older usage is estimated too, at today's prices.
"""

from datetime import date
from decimal import Decimal

from django.db import migrations

EFFECTIVE = date(2024, 1, 1)

# provider, pattern, input, cache read, cache write, output
PRICES = [
    ("openai", "gpt-5*", "1.25", "0.125", "1.25", "10"),
    ("openai", "gpt-5-mini*", "0.25", "0.025", "0.25", "2"),
    ("openai", "gpt-5-nano*", "0.05", "0.005", "0.05", "0.40"),
    ("openai", "gpt-5-pro*", "15", "15", "15", "120"),
    ("openai", "gpt-4.1*", "2", "0.50", "2", "8"),
    ("openai", "gpt-4.1-mini*", "0.40", "0.10", "0.40", "1.60"),
    ("openai", "gpt-4.1-nano*", "0.10", "0.025", "0.10", "0.40"),
    ("openai", "gpt-4o*", "2.50", "1.25", "2.50", "10"),
    ("openai", "gpt-4o-mini*", "0.15", "0.075", "0.15", "0.60"),
    ("openai", "o1*", "15", "7.50", "15", "60"),
    ("openai", "o1-mini*", "1.10", "0.55", "1.10", "4.40"),
    ("openai", "o3*", "2", "0.50", "2", "8"),
    ("openai", "o3-mini*", "1.10", "0.55", "1.10", "4.40"),
    ("openai", "o3-pro*", "20", "20", "20", "80"),
    ("openai", "o4-mini*", "1.10", "0.275", "1.10", "4.40"),
    ("openai", "text-embedding-3-small*", "0.02", "0.02", "0.02", "0"),
    ("openai", "text-embedding-3-large*", "0.13", "0.13", "0.13", "0"),
    # Opus 4.5 and later: $5 / $25; Opus 4 and 4.1: $15 / $75.
    ("anthropic", "claude-opus-4-[5-9]*", "5", "0.50", "6.25", "25"),
    ("anthropic", "claude-opus-4*", "15", "1.50", "18.75", "75"),
    ("anthropic", "claude-sonnet-4*", "3", "0.30", "3.75", "15"),
    ("anthropic", "claude-haiku-4*", "1", "0.10", "1.25", "5"),
    ("anthropic", "claude-3-7-sonnet*", "3", "0.30", "3.75", "15"),
    ("anthropic", "claude-3-5-sonnet*", "3", "0.30", "3.75", "15"),
    ("anthropic", "claude-3-5-haiku*", "0.80", "0.08", "1", "4"),
    ("anthropic", "claude-3-opus*", "15", "1.50", "18.75", "75"),
    ("anthropic", "claude-3-haiku*", "0.25", "0.03", "0.30", "1.25"),
    ("google", "gemini-3-pro*", "2", "0.20", "2", "12"),
    ("google", "gemini-2.5-pro*", "1.25", "0.125", "1.25", "10"),
    ("google", "gemini-2.5-flash*", "0.30", "0.03", "0.30", "2.50"),
    ("google", "gemini-2.5-flash-lite*", "0.10", "0.01", "0.10", "0.40"),
    ("google", "gemini-2.0-flash*", "0.10", "0.025", "0.10", "0.40"),
    ("google", "gemini-2.0-flash-lite*", "0.075", "0.075", "0.075", "0.30"),
]


def add_prices(apps, schema_editor):
    ModelPrice = apps.get_model("usage", "ModelPrice")
    for provider, pattern, input_, cache_read, cache_write, output in PRICES:
        ModelPrice.objects.update_or_create(
            provider=provider,
            model_pattern=pattern,
            effective_from=EFFECTIVE,
            defaults={
                "input_per_mtok": Decimal(input_),
                "cache_read_per_mtok": Decimal(cache_read),
                "cache_write_per_mtok": Decimal(cache_write),
                "output_per_mtok": Decimal(output),
            },
        )


def remove_prices(apps, schema_editor):
    ModelPrice = apps.get_model("usage", "ModelPrice")
    for provider, pattern, *_ in PRICES:
        ModelPrice.objects.filter(provider=provider, model_pattern=pattern, effective_from=EFFECTIVE).delete()


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(add_prices, remove_prices)]
