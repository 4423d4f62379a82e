"""An import's daily records while its file is read: summed per record key in memory, up to a bound.

A file has one record per (day, provider, account, identity, model, usage kind). An hourly export has about one
record for every 24 rows, but a daily export of a large org has one per row (85,000 people's month by model: some
5M), and held as Python objects a record took about 430 bytes. So the spool keeps at most BUFFER records; a full
buffer is written out sorted by key to a temporary file (a run) and emptied. Reading the records back merges the
runs in key order and sums the parts of each key in Python, as the buffer sums its rows: the figures are the same
whichever way they were held. The records' days per (provider, account, identity), which the store needs before it
writes a record (which scopes a newer export states), are kept as a bit per day: the spool grows with the file's
identities and days, not with its records.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import IO

RecordKey = tuple  # (day, provider, account, identity_key, model, usage_kind)
RecordPair = tuple  # a record key's (day, provider, account, identity_key)
Holder = tuple  # (provider, account, identity_key): whose days a record pair says


@dataclass(slots=True)  # one per record, updated for every row: slots make the updates cheaper
class Accumulated:
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    requests: int | None = None  # None while no row reported requests
    billed_cost: Decimal = Decimal(0)
    has_billed_cost: bool = False
    cost_estimated_by_vendor: bool = False
    has_unbilled_rows: bool = False

    def figures(self) -> tuple:
        """The fields in order, as Accumulated(*figures) takes them."""
        return (
            self.input_tokens,
            self.cache_write_tokens,
            self.cache_read_tokens,
            self.output_tokens,
            self.requests,
            self.billed_cost,
            self.has_billed_cost,
            self.cost_estimated_by_vendor,
            self.has_unbilled_rows,
        )

    def add(self, other: Accumulated) -> None:
        self.input_tokens += other.input_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.output_tokens += other.output_tokens
        if other.requests is not None:
            self.requests = (self.requests or 0) + other.requests
        self.billed_cost += other.billed_cost
        self.has_billed_cost |= other.has_billed_cost
        self.cost_estimated_by_vendor |= other.cost_estimated_by_vendor
        self.has_unbilled_rows |= other.has_unbilled_rows


class RecordSpool:
    """The import's records (RecordKey → Accumulated). `get` a key's sums to add a row to them, or `new` them;
    `items` gives every record once, whole (in key order once the buffer has been written out), and `pairs` the
    (day, provider, account, identity key) of the records, each once: the import's scopes and its standings marks."""

    BUFFER = 50_000
    # Records per pickle in a run: reading the runs back holds one pickle of each. A month of a large org's daily
    # usage writes 102 runs: 1,000 a pickle raised its import's peak by 33 MB while they were merged, 200 by none
    # (docs/PERFORMANCE.md).
    PICKLED_AT_ONCE = 200

    def __init__(self) -> None:
        self.buffer: dict[RecordKey, Accumulated] = {}
        # The days of each holder's records: (the first day's ordinal, a bit per day from it). A set of the pairs
        # took about 155 bytes a pair: 400 MB for a month of 85,000 people's daily usage.
        self._days: dict[Holder, tuple[int, int]] = {}
        self._runs: list[IO[bytes]] = []

    def get(self, key: RecordKey) -> Accumulated | None:
        return self.buffer.get(key)

    def new(self, key: RecordKey) -> Accumulated:
        """A key's sums, empty: the first row of the key since the buffer was last written out."""
        if len(self.buffer) >= self.BUFFER:
            self._write_out()
        accumulated = self.buffer[key] = Accumulated()
        holder, ordinal = key[1:4], key[0].toordinal()
        first, days = self._days.get(holder) or (ordinal, 0)
        if ordinal < first:
            first, days = ordinal, days << (first - ordinal)
        self._days[holder] = first, days | 1 << (ordinal - first)
        return accumulated

    def pairs(self) -> Iterator[RecordPair]:
        """The (day, provider, account, identity key) of the records, each once."""
        for (provider, account, identity_key), (first, days) in self._days.items():
            while days:
                lowest = days & -days
                yield date.fromordinal(first + lowest.bit_length() - 1), provider, account, identity_key
                days ^= lowest

    def identity_keys(self) -> set:
        return {identity_key for _provider, _account, identity_key in self._days}

    def __len__(self) -> int:
        """Records held in memory (the same key may also be in a run)."""
        return len(self.buffer)

    def items(self) -> Iterator[tuple[RecordKey, Accumulated]]:
        """Each record key once with its sums."""
        if not self._runs:
            yield from self.buffer.items()
            return
        self._write_out()
        parts = heapq.merge(*(self._run_read(run) for run in self._runs), key=itemgetter(0))
        for key, same_key in groupby(parts, key=itemgetter(0)):
            accumulated = None
            for _key, figures in same_key:
                if accumulated is None:
                    accumulated = Accumulated(*figures)
                else:
                    accumulated.add(Accumulated(*figures))
            yield key, accumulated

    def _write_out(self) -> None:
        if not self.buffer:
            return
        run = tempfile.TemporaryFile()
        ordered = sorted(self.buffer.items(), key=itemgetter(0))
        for start in range(0, len(ordered), self.PICKLED_AT_ONCE):
            part = [(key, accumulated.figures()) for key, accumulated in ordered[start : start + self.PICKLED_AT_ONCE]]
            pickle.dump(part, run, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(run)
        self.buffer.clear()

    @staticmethod
    def _run_read(run: IO[bytes]) -> Iterator[tuple[RecordKey, tuple]]:
        run.seek(0)
        while True:
            try:
                part = pickle.load(run)  # noqa: S301 (this spool's own file, written above)
            except EOFError:
                return
            yield from part

    def discard(self) -> None:
        """Forget every record (the import reads its file again another way)."""
        self.close()
        self.buffer.clear()
        self._days.clear()

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs.clear()

    def __enter__(self) -> RecordSpool:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
