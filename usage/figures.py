"""The usage figures, declared once: what every usage row, rollup and standing carries, what a ranking can be
ordered by, and the columns of the CSV exports and API totals derive from these lists."""

TOKEN_FIGURES = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "total_tokens")
COUNT_FIGURES = (*TOKEN_FIGURES, "requests")  # integers
MONEY_FIGURES = ("cost_usd", "billed_cost_usd")  # Decimal; billed_cost_usd is the part of cost_usd that was billed
SUMMED_FIGURES = (*COUNT_FIGURES, *MONEY_FIGURES)
# The usage kind of cost-report rows (OpenAI Costs API, Anthropic cost report): billed cost, no tokens
# (usage.services.standings says whose bill they are).
COST_REPORT_KIND = "cost"
# Figures some sources do not report (Anthropic's usage report has no request counts): unknown is NULL/None,
# never 0, and a sum is over the sources that report it (SQL SUM skips NULL; all unknown stays NULL).
UNREPORTED_FIGURES = ("requests",)

# What a ranking may be ordered by, in the order the pages offer them.
METRICS = (
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests",
    "cost_usd",
    "active_days",
)
METRIC_LABELS = {
    "total_tokens": "Total tokens",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cache_read_tokens": "Cache read tokens",
    "cache_write_tokens": "Cache write tokens",
    "requests": "Requests",
    "cost_usd": "Cost (USD)",
    "active_days": "Active days",
}
# The token and request columns every ranking CSV and API total carries, in the metrics' order.
TOTALS_COLUMNS = tuple(metric for metric in METRICS if metric in COUNT_FIGURES)

# --- Efficiency metrics (issue 14) -------------------------------------------------------------------------
# Ratios and weightings of the summed figures: computed from a row's sums (never summed themselves) and ranked
# only among the people above the window's minimum volume (settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS; by
# default the top half by total tokens). People below it are listed apart, not ranked.
EFFICIENCY_METRICS = ("cache_hit_rate", "output_share", "cost_per_mtok", "billed_equivalent_tokens")
METRICS = (*METRICS, *EFFICIENCY_METRICS)
METRIC_LABELS.update(
    cache_hit_rate="Cache hit rate",
    output_share="Output share",
    cost_per_mtok="Cost per million tokens",
    billed_equivalent_tokens="Billed-equivalent tokens",
)
METRIC_DEFINITIONS = {
    "cache_hit_rate": "Cache read tokens ÷ all prompt tokens (input + cache write + cache read); higher first.",
    "output_share": "Output tokens ÷ total tokens; higher first.",
    "cost_per_mtok": "Cost (USD) per million total tokens; cheapest first.",
    "billed_equivalent_tokens": "Tokens weighted by their price class (input 1, cache write 1.25, cache read 0.1, "
    "output 5), so a cached token does not count like a fresh one; higher first.",
}
# Hundredths of an input token's price (Anthropic's list ratios): integer weights keep the figure an integer.
PRICE_CLASS_WEIGHTS = {"input_tokens": 100, "cache_write_tokens": 125, "cache_read_tokens": 10, "output_tokens": 500}
# The standings keep every window's order and its teams' top person on these metrics only; another metric is
# ordered from the window's kept totals when first asked, once per refresh (leaderboard.selectors.ranked_order):
# ranking all twelve was most of a refresh at 85,000 people (docs/PERFORMANCE.md), for boards few open.
KEPT_METRICS = ("total_tokens",)
ASCENDING_METRICS = ("cost_per_mtok",)  # lower is better
SHARE_METRICS = ("cache_hit_rate", "output_share")  # fractions 0–1, shown as percentages
COST_METRICS = ("cost_usd", "cost_per_mtok")  # follow cost visibility (usage.access.can_rank_by_cost)


def metric_value(metric: str, figures):
    """A metric of an object carrying the summed figures; None when its denominator is zero."""
    get = figures.get if isinstance(figures, dict) else lambda name: getattr(figures, name)
    if metric == "cache_hit_rate":
        prompt = get("input_tokens") + get("cache_write_tokens") + get("cache_read_tokens")
        return get("cache_read_tokens") / prompt if prompt else None
    if metric == "output_share":
        return get("output_tokens") / get("total_tokens") if get("total_tokens") else None
    if metric == "cost_per_mtok":
        return get("cost_usd") * 1_000_000 / get("total_tokens") if get("total_tokens") else None
    if metric == "billed_equivalent_tokens":
        return sum(get(name) * weight for name, weight in PRICE_CLASS_WEIGHTS.items()) // 100
    return get(metric)


def metric_figures(metric: str) -> tuple[str, ...]:
    """The figures (SUMMED_FIGURES, or active_days) a metric is computed from."""
    return {
        "cache_hit_rate": ("input_tokens", "cache_write_tokens", "cache_read_tokens"),
        "output_share": ("output_tokens", "total_tokens"),
        "cost_per_mtok": ("cost_usd", "total_tokens"),
        "billed_equivalent_tokens": tuple(PRICE_CLASS_WEIGHTS),
    }.get(metric, (metric,))


def metric_sql(metric: str, alias: str) -> str:
    """The same metric as a SQL expression over a row of sums (`alias`.figure); NULL when undefined."""
    t = f"{alias}."
    if metric == "cache_hit_rate":
        prompt = f"{t}input_tokens + {t}cache_write_tokens + {t}cache_read_tokens"
        return f"(1.0 * {t}cache_read_tokens / NULLIF({prompt}, 0))"
    if metric == "output_share":
        return f"(1.0 * {t}output_tokens / NULLIF({t}total_tokens, 0))"
    if metric == "cost_per_mtok":
        return f"({t}cost_usd * 1000000 / NULLIF({t}total_tokens, 0))"
    if metric == "billed_equivalent_tokens":
        return f"(({' + '.join(f'{t}{name} * {w}' for name, w in PRICE_CLASS_WEIGHTS.items())}) / 100)"
    return f"{t}{metric}"


def metric_order_sql(metric: str, alias: str) -> str:
    """ORDER BY terms ranking on the metric: best first, an undefined value last."""
    if metric in ASCENDING_METRICS:
        return f"COALESCE({metric_sql(metric, alias)}, 1e18) ASC"
    return f"COALESCE({metric_sql(metric, alias)}, -1) DESC"


def metric_sort_key(metric: str, value) -> float:
    """Python's sort key for the same order (ascending sort)."""
    if value is None:
        return float("inf")
    return float(value) if metric in ASCENDING_METRICS else -float(value)
