"""Dataset columns added by stages: a stage lists in `columns` which of its `writes` go to the dataset.

The fixed columns (`DatasetRow`: orca-math-200k's `question`, `answer`, then provenance) always come
first. A stage may add more, typed, so that even an empty dataset has them and every row is checked:

    class RateDifficulty(Stage):
        writes = ("difficulty",)
        columns = {"difficulty": float}

Types are `str`, `int`, `float` and `bool`; `list` and `dict` values are stored as JSON text. A value
may be missing (None) on rows the stage did not see, e.g. rows that skipped it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orca_math.errors import ConfigError
from orca_math.records import DatasetRow, dataset_features

FIXED_COLUMNS = tuple(DatasetRow.model_fields)

#: Python type -> (JSON Schema type, `datasets.Value` dtype).
_TYPES: dict[type, tuple[str, str]] = {
    str: ("string", "string"),
    int: ("integer", "int64"),
    float: ("number", "float64"),
    bool: ("boolean", "bool"),
    list: ("string", "string"),
    dict: ("string", "string"),
}


class ColumnError(ConfigError):
    """A stage declared a dataset column that cannot be added."""


@dataclass(frozen=True)
class ExtraColumn:
    """A dataset column added by a stage."""

    name: str
    type: type
    stage: str

    def check(self, value: Any) -> str | None:
        """Why `value` cannot go in this column, or None when it can (None always can)."""
        if value is None:
            return None
        kind = self.type
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            return None
        return f"stage {self.stage!r} wrote {self.name}={value!r} ({type(value).__name__}), but declares the column as {kind.__name__}"

    def value(self, row: Mapping[str, Any]) -> Any:
        """The row's value for this column, JSON text for lists and dicts, None when absent."""
        value = row.get(self.name)
        if value is not None and self.type in (list, dict):
            return json.dumps(value, ensure_ascii=False)
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


def extra_columns(stages: Sequence[Any]) -> list[ExtraColumn]:
    """The columns the stages add, in stage order; checks each declaration.

    Raises:
        ColumnError: a column that is not among the stage's `writes`, that clashes with a fixed
            column, that has an unsupported type, or that two stages declare with different types.
    """
    found: dict[str, ExtraColumn] = {}
    for stage in stages:
        for name, kind in dict(getattr(stage, "columns", {}) or {}).items():
            where = f"stage {stage.name!r} declares column {name!r}"
            if name in FIXED_COLUMNS:
                raise ColumnError(f"{where}, but it is a fixed dataset column; fixed columns: {', '.join(FIXED_COLUMNS)}.")
            if name not in stage.writes:
                raise ColumnError(f"{where}, which is not in its writes ({', '.join(stage.writes) or 'none'}).")
            if kind not in _TYPES:
                raise ColumnError(f"{where} with type {kind!r}; use one of: str, int, float, bool, list, dict.")
            earlier = found.get(name)
            if earlier is not None and earlier.type is not kind:
                raise ColumnError(f"{where} as {kind.__name__}, but stage {earlier.stage!r} declares it as {earlier.type.__name__}.")
            if earlier is None:
                found[name] = ExtraColumn(name, kind, stage.name)
    return list(found.values())


def features(columns: Sequence[ExtraColumn]):
    """The `datasets.Features` of a generated dataset: `DatasetRow`'s fields, then the extra columns."""
    import datasets

    return dataset_features(DatasetRow, {c.name: datasets.Value(_TYPES[c.type][1]) for c in columns})


def describe(columns: Sequence[ExtraColumn]) -> dict[str, dict[str, str]]:
    """For summary.json and the dataset card: each extra column's type and the stage that adds it."""
    return {c.name: {"type": c.type.__name__, "stage": c.stage} for c in columns}
