"""The usage figures, declared once: what every usage row, rollup and standing carries, what a ranking can be
ordered by, and the columns of the CSV exports and API totals derive from these lists."""

TOKEN_FIGURES = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "total_tokens")
COUNT_FIGURES = (*TOKEN_FIGURES, "requests")  # integers
MONEY_FIGURES = ("cost_usd", "billed_cost_usd")  # Decimal; billed_cost_usd is the part of cost_usd that was billed
SUMMED_FIGURES = (*COUNT_FIGURES, *MONEY_FIGURES)
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
