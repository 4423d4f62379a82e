"""What an import stored, in a form two runs can be compared by: records, hours and identities, sorted."""

from usage.models import Identity, UsageHour, UsageRecord


def stored() -> tuple[list, list, list]:
    records = UsageRecord.objects.values_list(
        "identity__value", "day", "model", "usage_kind", "input_tokens", "cache_write_tokens", "cache_read_tokens",
        "output_tokens", "total_tokens", "requests", "cost_usd", "cost_source",
    )  # fmt: skip
    hours = UsageHour.objects.values_list(
        "identity__value", "day", "hour", "model", "requests", "input_tokens", "output_tokens", "total_tokens"
    )
    identities = Identity.objects.values_list("provider", "kind", "value", "owner_email", "label", "person__email")
    return sorted(records), sorted(hours), sorted(identities)
