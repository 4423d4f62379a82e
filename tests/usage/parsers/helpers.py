"""Reading fixtures the way the pipeline does: through the real payload opener (gzip/zip, encodings)."""

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from usage.parsers.base import DirectoryEntry, ParseContext, RowError, Sample, Skipped, UsageRow
from usage.parsers.payload import open_text, read_sample
from usage.parsers.registry import FORMATS, format_detect

FIXTURES = Path(__file__).parent / "fixtures"
LIMIT = 50 * 1024 * 1024


def context(**kwargs) -> ParseContext:
    if "tz" in kwargs and isinstance(kwargs["tz"], str):
        kwargs["tz"] = ZoneInfo(kwargs["tz"])
    return ParseContext(**kwargs)


def parse(path: Path, format_name: str, ctx: ParseContext | None = None) -> list:
    with open_text(str(path), max_decompressed=LIMIT) as (stream, _encoding):
        return list(FORMATS[format_name].parse(stream, ctx or context()))


def detect(path: Path) -> str:
    return format_detect(Sample(path.name, read_sample(str(path), max_decompressed=LIMIT))).name


def usage(items: list) -> list[UsageRow]:
    return [item for item in items if isinstance(item, UsageRow)]


def errors(items: list) -> list[RowError]:
    return [item for item in items if isinstance(item, RowError)]


def skipped(items: list) -> list[Skipped]:
    return [item for item in items if isinstance(item, Skipped)]


def directory(items: list) -> list[DirectoryEntry]:
    return [item for item in items if isinstance(item, DirectoryEntry)]


def per_identity(items: list) -> dict[str, dict]:
    """Totals per identity value: the four token classes, requests and cost (None when no row reported
    requests or had a cost)."""
    totals: dict[str, dict] = defaultdict(
        lambda: {"input": 0, "cache_write": 0, "cache_read": 0, "output": 0, "requests": None, "cost": None}
    )
    for row in usage(items):
        total = totals[row.identity_value]
        total["input"] += row.input_tokens
        total["cache_write"] += row.cache_write_tokens
        total["cache_read"] += row.cache_read_tokens
        total["output"] += row.output_tokens
        if row.requests is not None:
            total["requests"] = (total["requests"] or 0) + row.requests
        if row.cost_usd is not None:
            total["cost"] = (total["cost"] or Decimal(0)) + row.cost_usd
    return dict(totals)


def tokens(total: dict) -> tuple[int, int, int, int]:
    """(input, cache write, cache read, output)."""
    return total["input"], total["cache_write"], total["cache_read"], total["output"]


def focus_sample() -> Path:
    """The public FOCUS 1.0 sample in shared/ (beside the repository, in development and in CI)."""
    import pytest

    repo = Path(__file__).resolve().parents[3]
    for candidate in (repo.parent / "shared", Path("/work/shared")):
        path = candidate / "samples" / "public" / "focus_1.0_sample_1000.csv"
        if path.exists():
            return path
    pytest.skip("shared/samples/public/focus_1.0_sample_1000.csv is not beside the repository")
