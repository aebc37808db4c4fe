"""Seed reading, benchmark loading and dataset writing.

* `read_seeds(source)` yields `Problem` records lazily from jsonl/json/csv/parquet files,
  `save_to_disk` folders, Hub datasets or in-memory rows; `count_seeds` and `source_fingerprint`
  support progress bars and run keys.
* `load_benchmark(name)` gives GSM8K, SVAMP, ASDiv, AddSub, MultiArith, SingleOp and SingleEq with the
  columns `id`, `benchmark`, `question`, `gold`; `load_custom` maps any other file's columns.
* `write_dataset(rows, out, formats=...)` writes save_to_disk folders, parquet and JSON Lines.

See docs/data.md.
"""

from orca_math.data.benchmarks import (
    BENCHMARKS,
    BenchmarkError,
    BenchmarkLoad,
    BenchmarkSpec,
    Exclusion,
    HubSource,
    load_benchmark,
    load_benchmark_with_report,
    load_custom,
    load_custom_with_report,
    parse_gold,
)
from orca_math.data.seeds import (
    SeedError,
    canonical_number,
    count_seeds,
    final_answer_of,
    iter_raw_rows,
    read_seeds,
    source_fingerprint,
    stated_final_answer,
    strip_unit,
)
from orca_math.data.writers import DataFileError, read_jsonl, rows_to_dataset, write_dataset, write_jsonl

__all__ = [
    "BENCHMARKS",
    "BenchmarkError",
    "BenchmarkLoad",
    "BenchmarkSpec",
    "DataFileError",
    "Exclusion",
    "HubSource",
    "SeedError",
    "canonical_number",
    "count_seeds",
    "final_answer_of",
    "iter_raw_rows",
    "load_benchmark",
    "load_benchmark_with_report",
    "load_custom",
    "load_custom_with_report",
    "parse_gold",
    "read_jsonl",
    "read_seeds",
    "rows_to_dataset",
    "source_fingerprint",
    "stated_final_answer",
    "strip_unit",
    "write_dataset",
    "write_jsonl",
]
