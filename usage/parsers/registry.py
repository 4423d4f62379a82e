"""All known formats, in detection order (most specific first)."""

from importlib import import_module

from .base import Format, Sample

# Module names under usage.parsers, each exposing FORMAT. Add a format by adding its module here.
FORMAT_MODULES = [
    "openai_usage",
    "openai_costs",
    "openai_directory",
    "anthropic_cost",  # before anthropic_usage: grouped cost rows name token types ("uncached_input_tokens")
    "anthropic_usage",
    "claude_code",
    "anthropic_directory",
    "cursor_api",
    "cursor_daily_usage",
    "ccusage",
    "litellm",
    "openai_dashboard_csv",
    "cursor_csv",
    "copilot_csv",
    "aws_cur",
    "azure_cost",
    "gcp_billing",
    "focus",
    "generic_csv",  # never auto-detected: chosen as "generic_csv:<mapping name>"
]

FORMATS: dict[str, Format] = {}
for _module in FORMAT_MODULES:
    _format = import_module(f"usage.parsers.{_module}").FORMAT
    FORMATS[_format.name] = _format


class UnknownFormat(ValueError):
    pass


def format_get(name: str) -> Format:
    """A format by name; "generic_csv:<mapping name>" names the generic CSV format with a saved mapping."""
    try:
        return FORMATS[name.split(":", 1)[0] if name.startswith("generic_csv:") else name]
    except KeyError:
        raise UnknownFormat(f"unknown format {name!r}; known formats: {', '.join(sorted(FORMATS))}") from None


def format_detect(sample: Sample) -> Format:
    for candidate in FORMATS.values():
        if candidate.detect(sample):
            return candidate
    raise UnknownFormat(
        f"matches no known format (compared with: {', '.join(FORMATS)}); if it is a provider export, choose its "
        "format; any other CSV can be imported with a column mapping (Imports → upload → map its columns once)"
    )
