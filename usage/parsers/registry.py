"""All known formats, in detection order (most specific first)."""

from importlib import import_module

from .base import Format, Sample

# Module names under usage.parsers, each exposing FORMAT. Add a format by adding its module here.
FORMAT_MODULES = [
    "openai_usage",
    "anthropic_usage",
]

FORMATS: dict[str, Format] = {}
for _module in FORMAT_MODULES:
    _format = import_module(f"usage.parsers.{_module}").FORMAT
    FORMATS[_format.name] = _format


class UnknownFormat(ValueError):
    pass


def format_get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormat(f"unknown format {name!r}; known formats: {', '.join(sorted(FORMATS))}") from None


def format_detect(sample: Sample) -> Format:
    for candidate in FORMATS.values():
        if candidate.detect(sample):
            return candidate
    raise UnknownFormat(f"matches no known format (compared with: {', '.join(FORMATS)})")
