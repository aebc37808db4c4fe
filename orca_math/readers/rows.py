"""Rows of a folder as a table: filter by facets and text, count, and read one page from disk.

A query never builds rows it does not return: filters work on the index's integer arrays, a text
search reads the files once and keeps the matching entry numbers, and a page reads only its own
lines. Results are cached per index version, so paging through a filtered view is a slice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orca_math.readers.index import FACETS, EntryIndex

#: The most rows one page may hold.
MAX_PAGE = 500


@dataclass(frozen=True)
class RowQuery:
    """What the rows table shows: facet values to match (empty means any), text, and the page.

    Attributes:
        status, stage, origin, method, reason: facet values to keep (exact match; "" for any).
        text: a case-insensitive substring of the row's question, answer or reason.
        offset, limit: the page.
    """

    status: str = ""
    stage: str = ""
    origin: str = ""
    method: str = ""
    reason: str = ""
    text: str = ""
    offset: int = 0
    limit: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> RowQuery:
        """A query from URL parameters; a bad number is an error naming the parameter."""
        values: dict[str, Any] = {name: str(params.get(name, "")).strip() for name in (*FACETS, "text")}
        for name, default in (("offset", 0), ("limit", 50)):
            raw = params.get(name, default)
            try:
                values[name] = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {name}={raw!r} is not a whole number") from None
            if values[name] < 0:
                raise ValueError(f"parameter {name}={raw!r} must not be negative")
        values["limit"] = min(values["limit"] or 50, MAX_PAGE)
        return cls(**values)

    def filter_key(self) -> str:
        return "|".join(f"{n}={getattr(self, n)}" for n in (*FACETS, "text"))


class RowTable:
    """The filterable table over an `EntryIndex`.

    Args:
        index: the entries.
        current: returns the entry numbers a query starts from, in display order (all of them; or
            for a generation run the latest entry per problem, or every drop or failure when the
            query asks for those).
        status_of: turns an entry number's stored status into the one shown (a generation run
            shows `ok` rows as `kept` or `in progress` by their stage).
        text_fields: the row fields a text search looks in.
        describe: turns a read row into the table's row.
    """

    def __init__(self, index: EntryIndex, *, current: Callable[[RowQuery], np.ndarray],
                 shown_status: Callable[[np.ndarray], np.ndarray], status_names: Sequence[str],
                 text_fields: Sequence[str], describe: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.index = index
        self._current = current
        self._shown_status = shown_status
        self.status_names = list(status_names)
        self.text_fields = tuple(text_fields)
        self._describe = describe
        self._facets: tuple[int, dict[str, dict[str, int]]] | None = None

    def _facet_codes(self, numbers: np.ndarray, name: str) -> np.ndarray:
        if name == "status":
            return self._shown_status(numbers)
        return self.index.array(name)[numbers]

    def _value_code(self, name: str, value: str) -> int | None:
        if name == "status":
            return self.status_names.index(value) if value in self.status_names else None
        return self.index.strings.find(value)

    def matching(self, query: RowQuery) -> np.ndarray:
        """The entry numbers that pass the query's filters, in display order (cached)."""
        def build() -> np.ndarray:
            numbers = self._current(query)
            for name in FACETS:
                value = getattr(query, name)
                if not value:
                    continue
                code = self._value_code(name, value)
                if code is None:
                    return np.zeros(0, dtype=np.int64)
                numbers = numbers[self._facet_codes(numbers, name) == code]
            if query.text:
                found = self.index.scan(numbers, query.text, self.text_fields)
                numbers = numbers[np.isin(numbers, found)]
            return numbers

        return self.index.cached("rows:" + query.filter_key(), build)

    def facet_counts(self) -> dict[str, dict[str, int]]:
        """For each facet, every value present among the rows a query can show, and how many rows have it.

        Counted once per index version: every page of the table shows them.
        """
        if self._facets is not None and self._facets[0] == self.index.version:
            return self._facets[1]
        numbers = np.unique(np.concatenate([self._current(RowQuery(status=s)) for s in ("", *self.status_names)]))
        counts: dict[str, dict[str, int]] = {}
        for name in FACETS:
            codes = self._facet_codes(numbers, name)
            tally = np.bincount(codes.astype(np.int64)) if len(codes) else np.zeros(0, dtype=np.int64)
            names = self.status_names if name == "status" else self.index.strings.values
            counts[name] = {names[c]: int(n) for c, n in enumerate(tally) if n and names[c]}
        self._facets = (self.index.version, counts)
        return counts

    def page(self, query: RowQuery) -> dict[str, Any]:
        """`{"total", "offset", "limit", "rows", "version"}` for one page of the query."""
        self.index.refresh()
        numbers = self.matching(query)
        chosen = numbers[query.offset: query.offset + query.limit]
        statuses = self._shown_status(chosen) if len(chosen) else []
        rows = []
        for number, status, row in zip(chosen.tolist(), list(statuses), self.index.read_many(chosen.tolist()), strict=True):
            shown = self._describe(row)
            shown["status"] = self.status_names[int(status)]
            shown["entry"] = number
            rows.append(shown)
        return {"total": int(len(numbers)), "offset": query.offset, "limit": query.limit, "rows": rows,
                "version": self.index.version}
